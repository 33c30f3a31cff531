"""Notifiers: sinks that tell the user (MQTT, e-mail, push...)."""
