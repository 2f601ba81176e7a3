"""``trialdesk serve``, ``trialdesk audit verify``, ``trialdesk users ...``, ``trialdesk backup`` and ``trialdesk restore``
(mounted by the main CLI)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import typer

SETTINGS = "trialdesk.edc.settings"

serve_app = typer.Typer(help="Run the trial desk (the EDC web app).")
audit_app = typer.Typer(help="The audit trail.", no_args_is_help=True)
users_app = typer.Typer(help="Accounts of the study team.", no_args_is_help=True)


def _django(debug: bool | None = None, *, offline: bool = True) -> None:
    """Configure Django. ``offline`` commands (accounts, audit) sign no cookies, so they get a
    throwaway key when TRIALDESK_SECRET_KEY is unset; the server never does."""
    os.environ["DJANGO_SETTINGS_MODULE"] = SETTINGS
    if debug:
        os.environ.setdefault("TRIALDESK_DEBUG", "1")
    if offline and not os.environ.get("TRIALDESK_SECRET_KEY"):
        import secrets

        os.environ["TRIALDESK_SECRET_KEY"] = secrets.token_urlsafe(50)
    import django

    django.setup()


def _migrate() -> None:
    from django.conf import settings
    from django.core.management import call_command

    db = settings.DATABASES["default"]
    if db["ENGINE"].endswith("sqlite3"):
        from pathlib import Path

        Path(db["NAME"]).parent.mkdir(parents=True, exist_ok=True)
    call_command("migrate", interactive=False, verbosity=0)


def waitress_options(**base: object) -> dict[str, object]:
    """waitress's settings: ``base`` and, when the settings name a trusted proxy, its address and the headers it sets."""
    from django.conf import settings

    options = dict(base)
    if settings.TRIALDESK_TRUSTED_PROXY:
        options.update(trusted_proxy=settings.TRIALDESK_TRUSTED_PROXY, trusted_proxy_count=1,
                       trusted_proxy_headers=" ".join(settings.TRIALDESK_TRUSTED_PROXY_HEADERS), clear_untrusted_proxy_headers=True)
    return options


@serve_app.callback(invoke_without_command=True)
def serve(host: str = typer.Option("127.0.0.1", help="address to listen on"),
          port: int = typer.Option(8000, help="port"),
          production: bool = typer.Option(False, "--production", help="serve with waitress (needs TRIALDESK_SECRET_KEY); "
                                                                       "otherwise Django's development server with TRIALDESK_DEBUG=1"),
          threads: int = typer.Option(8, help="waitress worker threads")) -> None:
    """Apply any pending migrations, then serve the trial desk and print its address."""
    from django.core.exceptions import ImproperlyConfigured

    try:
        _django(debug=not production, offline=False)
    except ImproperlyConfigured as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from None
    _migrate()
    typer.echo(f"trialdesk is serving on http://{host}:{port}/  (Ctrl+C to stop)")
    if production:
        from waitress import serve as waitress_serve

        from trialdesk.edc.wsgi import application

        waitress_serve(application, **waitress_options(host=host, port=port, threads=threads))
    else:
        from django.core.management import call_command

        call_command("runserver", f"{host}:{port}", use_reloader=False)


@audit_app.command("verify")
def verify() -> None:
    """Check the audit trail's hash chain and every record against its history; exit 1 naming each broken entry and changed record."""
    _django()
    from trialdesk.edc.audit.trail import verify as run

    result = run()
    typer.echo(result.report())
    if not result.ok:
        raise typer.Exit(1)


@users_app.command("create")
def createuser(username: str = typer.Argument(..., help="the unique user id"),
               role: str = typer.Option(..., "--role",
                       help="pi, sub_investigator, coordinator, data_manager, monitor, dsmb, sponsor, admin"),
               first_name: str = typer.Option("", "--first-name"), last_name: str = typer.Option("", "--last-name"),
               email: str = typer.Option("", "--email"),
               site: str = typer.Option("", "--site", help="the facility the person works at (blank: this trial's own site); an"
                                                           " account of a site that is not one of the protocol's locations cannot sign in"),
               password: str = typer.Option(None, "--password", help="a temporary password (asked for when omitted)"),
               keep_password: bool = typer.Option(False, "--keep-password", help="do not force a change at first login")) -> None:
    """Create an account. It must change its password at first login unless --keep-password."""
    _django()
    _migrate()
    from trialdesk.edc.accounts.service import create_user
    from trialdesk.trial.errors import ConductError

    if password is None:
        password = typer.prompt("Temporary password", hide_input=True, confirmation_prompt=True)
    try:
        user = create_user(username, role, password, first_name=first_name, last_name=last_name, email=email, site=site,
                           must_change_password=not keep_password)
    except ConductError as e:
        typer.echo(f"error: {e.field}: {e.message}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"created {user.username} ({user.role_name})" + ("; must change the password at first login" if not keep_password else ""))


@users_app.command("list")
def list_users() -> None:
    _django()
    from trialdesk.edc.accounts.models import User

    for u in User.objects.order_by("username"):
        typer.echo(f"{u.username}\t{u.role}\t{u.get_full_name()}\t{'active' if u.is_active else 'inactive'}")


@users_app.command("unlock")
def unlock(username: str) -> None:
    """Clear the failed-login lockout of an account."""
    _django()
    from axes.utils import reset

    n = reset(username=username)
    typer.echo(f"cleared {n} lockout record(s) for {username}")


def backup_command(out: Path = typer.Option(..., "--out", help="the backup file to write (a tar with a manifest and the database copy)")
                   ) -> None:
    """Back up the trial desk's database (PostgreSQL or SQLite) into one file with a manifest and SHA-256 checksum."""
    _django()
    from trialdesk.edc.backup import BackupError, backup

    try:
        m = backup(out)
    except BackupError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"backup written to {out}: {m['engine']} database {m['database']}, {m['audit']['entries']} audit entries,"
               f" {sum(m['records'].values())} trial records, {len(m['migrations'])} migrations; SHA-256 {m['payload']['sha256']}")


def restore_command(file: Path = typer.Argument(..., help="a file written by 'trialdesk backup'"),
                    yes: bool = typer.Option(False, "--yes", help="replace the database without asking")) -> None:
    """Replace the trial desk's database with a backup, after checking the whole file; a damaged file changes nothing."""
    _django()
    from trialdesk.edc.audit.trail import verify as run_verify
    from trialdesk.edc.backup import BackupError, restore

    if not yes and not typer.confirm(f"Replace the database with the backup in {file}? Everything written since is lost"):
        raise typer.Exit(1)
    try:
        outcome = restore(file)
    except BackupError as e:
        typer.echo(f"error: {e}", err=True)
        typer.echo("the database was not changed", err=True)
        raise typer.Exit(2) from None
    m = outcome["manifest"]
    typer.echo(f"restored the backup of {m['created_at']} ({m['audit']['entries']} audit entries,"
               f" {sum(m['records'].values())} trial records)")
    if outcome["differs"]:
        typer.echo(f"warning: the restored {' and '.join(outcome['differs'])} differ from the manifest", err=True)
    result = run_verify()
    typer.echo(result.report())
    if not result.ok or outcome["differs"]:
        raise typer.Exit(1)


app = typer.Typer(help="The trial desk (EDC).", no_args_is_help=True)
app.add_typer(serve_app, name="serve")
app.add_typer(audit_app, name="audit")
app.add_typer(users_app, name="users")
app.command("backup")(backup_command)
app.command("restore")(restore_command)

if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
