"""The `email` notifier against a real SMTP server (aiosmtpd) started by the tests."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from homesec.interfaces import Notifier
from homesec.models.enums import PluginType
from homesec.plugins.notifiers.email import EmailNotifier, EmailNotifierConfig
from homesec.plugins.registry import load_notifier, validate_plugin_config
from tests.plugins.notifiers.helpers import (
    PASSWORD,
    USER,
    names_the_problem,
    sample_alert,
    stage_failure_alert,
)
from tests.services.smtp_server import SMTPServer


def mail_config(server: SMTPServer, **extra: Any) -> dict[str, Any]:
    security = {None: "none", "starttls": "starttls", "implicit": "tls"}[server.tls]
    config: dict[str, Any] = {
        "host": "localhost" if server.tls else server.host,
        "port": server.port,
        "security": security,
        "from_address": "HomeSec <homesec@example.invalid>",
        "to_addresses": ["me@example.invalid", "partner@example.invalid"],
        "timeout_s": 5.0,
    }
    if server.tls:
        config["ca_file"] = str(server.ca_file)
    return config | extra


def minimal_config(**changes: Any) -> dict[str, Any]:
    """Just what an email config needs, keys replaced."""
    return {
        "host": "localhost",
        "from_address": "a@b.c",
        "to_addresses": ["d@e.f"],
        **changes,
    }


def make_notifier(**config: Any) -> EmailNotifier:
    return EmailNotifier.create(EmailNotifierConfig.model_validate(config))


def bodies(message: EmailMessage) -> tuple[str, str]:
    text = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    assert text is not None and html is not None
    return text.get_content(), html.get_content()


def test_registered_as_the_email_notifier() -> None:
    # Given the plugin registry and a minimal config
    raw = minimal_config(host="smtp.example.invalid")

    # When the email backend is loaded by name
    notifier = load_notifier("email", raw)

    # Then it is an EmailNotifier and a Notifier
    assert isinstance(notifier, Notifier)
    assert isinstance(notifier, EmailNotifier)
    assert notifier.name == "email"


async def test_alert_is_mailed_with_text_html_link_and_snapshot_attached(
    smtp_server: SMTPServer, snapshot: Path
) -> None:
    # Given an email notifier on a plain SMTP server
    notifier = make_notifier(**mail_config(smtp_server))
    alert = sample_alert(summary="A person walks to the front door & tries the handle.")

    # When an alert with a snapshot is sent
    await notifier.send(alert, snapshot)

    # Then one mail reaches both recipients with the subject, both bodies and the snapshot
    [mail] = await smtp_server.wait_for(1)
    assert mail.mail_from == "homesec@example.invalid"
    assert mail.rcpt_tos == ["me@example.invalid", "partner@example.invalid"]
    message = mail.message
    assert message["Subject"] == "[HomeSec] front_door: person_at_door (high risk)"
    assert message["X-HomeSec-Clip-Id"] == alert.clip_id
    text, html = bodies(message)
    assert alert.view_url is not None
    assert alert.view_url in text
    assert f'href="{alert.view_url}"' in html
    assert "walks to the front door &amp; tries" in html  # HTML is escaped, text is not
    assert "walks to the front door & tries" in text
    [attachment] = message.iter_attachments()
    assert attachment.get_content_type() == "image/jpeg"
    assert attachment.get_filename() == "front_door_1700000000.jpg"
    assert attachment.get_content() == snapshot.read_bytes()
    assert await notifier.ping() is True


async def test_inline_snapshot_is_shown_in_the_html_by_content_id(
    smtp_server: SMTPServer, snapshot: Path
) -> None:
    # Given a notifier that shows the snapshot inside the HTML body
    notifier = make_notifier(**mail_config(smtp_server, snapshot="inline"))

    # When an alert with a snapshot is sent
    await notifier.send(sample_alert(), snapshot)

    # Then the HTML refers to the image part by its Content-ID
    [mail] = await smtp_server.wait_for(1)
    _, html = bodies(mail.message)
    images = [part for part in mail.message.walk() if part.get_content_type() == "image/jpeg"]
    assert len(images) == 1
    content_id = str(images[0]["Content-ID"]).strip("<>")
    assert f'src="cid:{content_id}"' in html
    assert images[0].get_content() == snapshot.read_bytes()


async def test_alert_without_upload_or_analysis_says_so(smtp_server: SMTPServer) -> None:
    # Given an alert whose upload failed and that the VLM skipped, and no snapshot
    notifier = make_notifier(**mail_config(smtp_server))
    alert = sample_alert(
        view_url=None,
        storage_uri=None,
        upload_failed=True,
        risk_level=None,
        activity_type=None,
        summary=None,
        notify_reason="motion (notify_on_motion)",
    )

    # When it is sent
    await notifier.send(alert)

    # Then the mail says where the clip is, with no link and no attachment
    [mail] = await smtp_server.wait_for(1)
    assert mail.message["Subject"] == "[HomeSec] front_door: alert"
    text, html = bodies(mail.message)
    assert "could not be uploaded" in text
    assert "href" not in html
    assert list(mail.message.iter_attachments()) == []


async def test_starttls_with_auth_delivers_as_the_configured_user(
    make_smtp_server: Callable[..., SMTPServer], credentials: dict[str, str], snapshot: Path
) -> None:
    # Given a server that requires STARTTLS and AUTH, and the credentials in env vars
    server = make_smtp_server(tls="starttls", users={USER: PASSWORD})
    notifier = make_notifier(**mail_config(server, **credentials))

    # When an alert is sent
    await notifier.send(sample_alert(), snapshot)

    # Then it was delivered over TLS by the authenticated user
    [mail] = await server.wait_for(1)
    assert mail.auth_user == USER
    assert len(list(mail.message.iter_attachments())) == 1


async def test_implicit_tls_with_auth_delivers(
    make_smtp_server: Callable[..., SMTPServer], credentials: dict[str, str]
) -> None:
    # Given a server speaking TLS from the first byte (port 465 style), with AUTH
    server = make_smtp_server(tls="implicit", users={USER: PASSWORD})
    notifier = make_notifier(**mail_config(server, **credentials))

    # When an alert is sent
    await notifier.send(sample_alert())

    # Then it was delivered by the authenticated user
    [mail] = await server.wait_for(1)
    assert mail.auth_user == USER


async def test_wrong_password_raises_without_showing_it(
    make_smtp_server: Callable[..., SMTPServer],
    credentials: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Given a server with AUTH and a wrong password in the env var
    caplog.set_level(logging.DEBUG)
    server = make_smtp_server(tls="starttls", users={USER: PASSWORD})
    monkeypatch.setenv(credentials["password_env"], "wrong-battery-17")
    notifier = make_notifier(**mail_config(server, **credentials))

    # When an alert is sent
    with pytest.raises(ConnectionError) as caught:
        await notifier.send(sample_alert())

    # Then the error says the login failed, never the password; nothing was delivered
    assert "wrong-battery-17" not in str(caught.value)
    assert "wrong-battery-17" not in caplog.text
    assert server.messages == []
    assert await notifier.ping() is False


async def test_untrusted_certificate_is_refused(
    make_smtp_server: Callable[..., SMTPServer],
) -> None:
    # Given a STARTTLS server with a self-signed certificate, and no ca_file to trust it
    server = make_smtp_server(tls="starttls")
    config = mail_config(server)
    del config["ca_file"]
    notifier = make_notifier(**config)

    # When an alert is sent, then the certificate is refused and nothing is delivered
    with pytest.raises(ConnectionError):
        await notifier.send(sample_alert())
    assert server.messages == []


async def test_templates_in_template_dir_replace_the_defaults(
    smtp_server: SMTPServer, tmp_path: Path
) -> None:
    # Given a template folder that replaces only the plain-text body, and a subject template
    (tmp_path / "email_alert.txt.j2").write_text(
        "{{ camera_name }} saw {{ activity_type }} at {{ alert.ts.strftime('%H:%M') }}\n"
    )
    notifier = make_notifier(
        **mail_config(
            smtp_server,
            template_dir=str(tmp_path),
            subject_template="Alert on {{ camera_name | upper }}\nsecond line",
        )
    )

    # When an alert is sent
    await notifier.send(sample_alert())

    # Then the text is the user's, the HTML the default, and the subject one line
    [mail] = await smtp_server.wait_for(1)
    text, html = bodies(mail.message)
    assert text.strip() == "front_door saw person_at_door at 22:13"
    assert "View the clip" in html
    assert mail.message["Subject"] == "Alert on FRONT_DOOR second line"


@pytest.mark.parametrize(
    ("override", "problem"),
    [
        ({"subject_template": "{{ camera }}"}, "'camera' is undefined"),
        ({"subject_template": "{% if risk_level %}"}, "subject_template"),
        ({"template_dir": "/nonexistent/templates"}, "path_not_directory"),
        ({"security": "none", "username_env": "PATH", "password_env": "PATH"}, "need security"),
        ({"username_env": "PATH"}, "go together"),
        ({"to_addresses": []}, "too_short"),
        ({"to_addresses": ["not an address"]}, "not an e-mail address"),
        ({"from_address": "homesec@example.invalid\r\nBcc: x@y.z"}, "not an e-mail address"),
        ({"security": "ssl"}, "literal_error"),
        ({"snapshot": "maybe"}, "literal_error"),
        ({"smtp_host": "x"}, "extra_forbidden"),
    ],
)
def test_bad_config_is_rejected_at_load(override: dict[str, Any], problem: str) -> None:
    # Given an email config with one problem
    raw = minimal_config(**override)

    # When it is validated as the email notifier's config
    with pytest.raises(ValidationError) as caught:
        validate_plugin_config(PluginType.NOTIFIER, "email", raw)

    # Then the error names the problem
    assert names_the_problem(caught.value, problem)


def test_a_template_typo_in_template_dir_fails_at_load(tmp_path: Path) -> None:
    # Given a template folder whose HTML body uses a name no alert has
    (tmp_path / "email_alert.html.j2").write_text("<p>{{ sumary }}</p>")
    raw = minimal_config(template_dir=str(tmp_path))

    # When the config is validated, then the template and the name are reported
    with pytest.raises(ValidationError, match=r"email_alert\.html\.j2.*'sumary' is undefined"):
        validate_plugin_config(PluginType.NOTIFIER, "email", raw)


async def test_system_alert_is_mailed_with_its_own_subject_and_text(
    smtp_server: SMTPServer,
) -> None:
    # Given an email notifier
    notifier = make_notifier(**mail_config(smtp_server))
    alert = stage_failure_alert()

    # When a system alert is sent
    await notifier.send_system(alert)

    # Then it is mailed with the system subject and what went wrong, where
    [mail] = await smtp_server.wait_for(1)
    assert mail.message["Subject"] == "[HomeSec] needs attention: stage_retries_exhausted"
    text = mail.message.get_content()
    assert "upload gave up after 3 attempt(s)" in text
    assert "Camera: front_door" in text
    assert "Stage:  upload" in text


async def test_server_down_raises_at_once(closed_port: int) -> None:
    # Given a notifier whose SMTP server is not running
    notifier = make_notifier(**minimal_config(host="127.0.0.1", port=closed_port, security="none"))

    # When an alert is sent, then it raises quickly so the pipeline can retry
    async with asyncio.timeout(2.0):
        with pytest.raises(ConnectionError, match=f"127.0.0.1:{closed_port}"):
            await notifier.send(sample_alert())
    assert await notifier.ping() is False


@pytest.mark.slow
async def test_silent_server_raises_within_the_timeout(silent_port: int) -> None:
    # Given a notifier whose SMTP server accepts the connection but never greets
    notifier = make_notifier(
        **minimal_config(host="127.0.0.1", port=silent_port, security="none", timeout_s=0.5)
    )

    # When an alert is sent, then it gives up after timeout_s
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(TimeoutError, match=r"0\.5 s"):
        await notifier.send(sample_alert())
    assert loop.time() - started < 1.5
