"""Flask extensions, created unbound and attached in create_app(). (The database is not one of them:
each app gets its own ``Database``, see ``app.db``.)"""

from flask_htmx import HTMX
from flask_login import LoginManager
from flask_wtf.csrf import CSRFProtect

login_manager = LoginManager()
csrf = CSRFProtect()
htmx = HTMX()
