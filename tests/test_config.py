import pytest

from app.config import ConfigError, load_config


def test_production_requires_a_secret_key(tmp_path):
    with pytest.raises(ConfigError, match="SECRET_KEY is required"):
        load_config(tmp_path, {"GROUNDWORK_ENV": "production"})


def test_development_generates_a_key_once_and_defaults_to_sqlite(tmp_path, caplog):
    with caplog.at_level("WARNING", logger="groundwork.config"):
        first = load_config(tmp_path, {})
    assert [r.getMessage() for r in caplog.records] == [
        "SECRET_KEY is not set; generated a development key into secret_key under the instance folder. "
        "Set SECRET_KEY in production."]
    caplog.clear()
    second = load_config(tmp_path, {})
    assert not caplog.records  # said once, when the key is made
    assert first["SECRET_KEY"] == second["SECRET_KEY"] and len(first["SECRET_KEY"]) == 64
    assert first["DATABASE_URL"] == f"sqlite:///{tmp_path / 'groundwork.sqlite3'}"
    assert first["REDIS_URL"] is None and first["SESSION_COOKIE_SECURE"] is False


def test_production_cookies_are_secure_and_postgres_urls_use_psycopg(tmp_path):
    config = load_config(
        tmp_path, {"GROUNDWORK_ENV": "production", "SECRET_KEY": "s", "DATABASE_URL": "postgres://u@h/db"}
    )
    assert config["SESSION_COOKIE_SECURE"] is True
    assert config["DATABASE_URL"] == "postgresql+psycopg://u@h/db"


def test_unknown_environment_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="GROUNDWORK_ENV"):
        load_config(tmp_path, {"GROUNDWORK_ENV": "staging", "SECRET_KEY": "s"})


def test_operations_settings_default_to_plain_logs_and_no_token(tmp_path):
    config = load_config(tmp_path, {"SECRET_KEY": "s"})
    assert config["LOG_FORMAT"] == "text" and config["LOG_LEVEL"] == "INFO"
    assert config["METRICS_TOKEN"] is None and config["PROMETHEUS_MULTIPROC_DIR"] is None
    assert config["READY_TIMEOUT"] == 2.0 and config["HSTS_SECONDS"] == 0


def test_operations_settings_are_parsed(tmp_path):
    config = load_config(tmp_path, {
        "SECRET_KEY": "s", "LOG_FORMAT": " JSON ", "LOG_LEVEL": "warning", "METRICS_TOKEN": "a" * 16,
        "READY_TIMEOUT": "0.5", "HSTS_SECONDS": "31536000", "PROMETHEUS_MULTIPROC_DIR": str(tmp_path),
    })
    assert config["LOG_FORMAT"] == "json" and config["LOG_LEVEL"] == "WARNING"
    assert config["METRICS_TOKEN"] == "a" * 16 and config["READY_TIMEOUT"] == 0.5
    assert config["HSTS_SECONDS"] == 31536000 and config["PROMETHEUS_MULTIPROC_DIR"] == str(tmp_path)


@pytest.mark.parametrize(("name", "value", "message"), [
    ("LOG_FORMAT", "xml", "LOG_FORMAT must be one of text, json"),
    ("LOG_LEVEL", "loud", "LOG_LEVEL must be one of DEBUG, INFO, WARNING, ERROR"),
    ("METRICS_TOKEN", "short", "METRICS_TOKEN must be 16–256 characters"),
    ("METRICS_TOKEN", "a" * 257, "METRICS_TOKEN must be 16–256 characters"),
    ("METRICS_TOKEN", "spaces in the token here", "METRICS_TOKEN must be"),
    ("READY_TIMEOUT", "soon", "READY_TIMEOUT must be a number of seconds"),
    ("READY_TIMEOUT", "0", "READY_TIMEOUT must be between 0.1 and 30 seconds"),
    ("READY_TIMEOUT", "nan", "READY_TIMEOUT must be between"),
    ("HSTS_SECONDS", "-1", "HSTS_SECONDS must be a whole number"),
    ("HSTS_SECONDS", "99999999", "HSTS_SECONDS must be a whole number"),
    ("PROMETHEUS_MULTIPROC_DIR", "/no/such/folder", "PROMETHEUS_MULTIPROC_DIR must be an existing folder"),
    ("CURRENCY", "dollars", "CURRENCY must be a three-letter ISO 4217 code"),
    ("CURRENCY", "€", "CURRENCY must be a three-letter ISO 4217 code"),
])
def test_operations_settings_are_checked(tmp_path, name, value, message):
    with pytest.raises(ConfigError, match=message):
        load_config(tmp_path, {"SECRET_KEY": "s", name: value})


def test_trusted_hosts_are_parsed_checked_and_enforced(tmp_path):
    from tests.conftest import build_app

    KEY = {"SECRET_KEY": "k" * 32}  # noqa: N806

    assert load_config(tmp_path, KEY)["TRUSTED_HOSTS"] is None
    parsed = load_config(tmp_path, {**KEY, "TRUSTED_HOSTS": " groundwork.example.org, .example.net ,127.0.0.1:5000"})
    assert parsed["TRUSTED_HOSTS"] == ["groundwork.example.org", ".example.net", "127.0.0.1:5000"]
    for bad in ("evil.example/x", "a b", "host\r\nX: y", "x" * 300):
        with pytest.raises(ConfigError, match="TRUSTED_HOSTS"):
            load_config(tmp_path, {**KEY, "TRUSTED_HOSTS": bad})
    app = build_app(f"sqlite:///{tmp_path / 'hosts.sqlite3'}", tmp_path, TRUSTED_HOSTS=["groundwork.test"])
    client = app.test_client()
    assert client.get("/login", headers={"Host": "groundwork.test"}).status_code == 200
    refused = client.get("/admin", headers={"Host": "evil.example"})
    assert refused.status_code == 400 and "evil.example" not in refused.headers.get("Location", "")


def test_the_currency_is_a_code_shown_beside_amounts(tmp_path):
    assert load_config(tmp_path, {"SECRET_KEY": "s"})["CURRENCY"] == "USD"
    assert load_config(tmp_path, {"SECRET_KEY": "s", "CURRENCY": " eur "})["CURRENCY"] == "EUR"
