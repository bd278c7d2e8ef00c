import pytest

from app.config import ConfigError, load_config


def test_production_requires_a_secret_key(tmp_path):
    with pytest.raises(ConfigError, match="SECRET_KEY is required"):
        load_config(tmp_path, {"GROUNDWORK_ENV": "production"})


def test_development_generates_a_key_once_and_defaults_to_sqlite(tmp_path):
    with pytest.warns(UserWarning, match="SECRET_KEY is not set"):
        first = load_config(tmp_path, {})
    second = load_config(tmp_path, {})
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
