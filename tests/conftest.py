"""Shared fixtures: real services (Postgres, Mosquitto) and the shared media and models."""

pytest_plugins = [
    "tests.services.shared_files",
    "tests.services.postgres",
    "tests.services.mosquitto",
    "tests.services.openai_server",
]
