"""The load test: simulated trainers, reviewers and an admin against a live server (locust), the check
of the database after a run, and the capacity steps.

    .venv/bin/python -m bench.load.run --db sqlite --users 50 --seconds 60
    .venv/bin/python -m bench.load.check --database-url URL --acks FILE
    .venv/bin/python -m bench.load.capacity --db sqlite|postgres
"""
