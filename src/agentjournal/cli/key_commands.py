"""`agentjournal keys`: create, list and revoke the API keys of the gateway, per tenant."""

from __future__ import annotations

import getpass
from typing import TYPE_CHECKING, Annotated

import typer

from agentjournal.cli import output
from agentjournal.cli.app import app, console, errors, open_journal
from agentjournal.cli.output import Col, JsonOption, print_json

if TYPE_CHECKING:
    from agentjournal.api.keys import KeyInfo

keys_app = typer.Typer(no_args_is_help=True, help="API keys per tenant, with roles: create, list, revoke.")
app.add_typer(keys_app, name="keys")


def _local_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no user name in the environment nor the password database
        return "cli"


ByOption = Annotated[
    str | None,
    typer.Option(
        "--by", help="Who does this, recorded on the event (default: the local user name)", show_default=False
    ),
]


@keys_app.command("create")
def keys_create_command(
    tenant: Annotated[str, typer.Option("--tenant", help="The tenant the key acts for", show_default=False)],
    role: Annotated[
        list[str],
        typer.Option("--role", help="read, approve, run or admin (admin implies the others); repeatable"),
    ],
    name: Annotated[str, typer.Option("--name", help="What uses the key, e.g. billing-dashboard", show_default=False)],
    by: ByOption = None,
    as_json: JsonOption = False,
) -> None:
    """Create an API key for a tenant and print its secret, once: only its SHA-256 is kept, so
    nothing can show the secret again. The creation is recorded as ApiKeyCreated on `api-keys`.

    --json prints one object: key_id, secret, tenant_id, roles, name, created_at, created_by.

    Example: agentjournal keys create --tenant acme --role read --role approve --name dashboard
    """
    from agentjournal.api.keys import ApiKeys

    created = ApiKeys(open_journal(create=True)).create(tenant, role, name, by=by or _local_user())
    key = created.key
    if as_json:
        print_json(
            [
                {
                    "key_id": key.key_id,
                    "secret": created.secret,
                    "tenant_id": key.tenant_id,
                    "roles": list(key.roles),
                    "name": key.name,
                    "created_at": key.created_at,
                    "created_by": key.created_by,
                }
            ]
        )
    else:
        console.print(
            f"created API key {key.key_id} for tenant {key.tenant_id} (roles: {', '.join(key.roles)})",
            highlight=False,
            markup=False,
        )
        console.print(created.secret, highlight=False, markup=False, soft_wrap=True)
    errors.print(
        "[bold yellow]warning:[/bold yellow] the secret is not shown again: store it now",
        highlight=False,
    )


@keys_app.command("list")
def keys_list_command(
    tenant: Annotated[str | None, typer.Option("--tenant", help="Only this tenant's keys")] = None,
    as_json: JsonOption = False,
) -> None:
    """Every API key, revoked ones too, oldest first; never a secret nor its hash.

    --json prints one object per key: key_id, tenant_id, name, roles, status (active or
    revoked), created_at, created_by, revoked_at, revoked_by.

    Example: agentjournal keys list --tenant acme
    """
    from agentjournal.api.keys import ApiKeys

    keys = ApiKeys(open_journal()).list(tenant)
    if as_json:
        print_json(_record(key) for key in keys)
        return
    if not keys:
        console.print(
            f"no API keys{' for tenant ' + tenant if tenant else ''}: `agentjournal keys create` makes one",
            highlight=False,
            markup=False,
        )
        return
    output.print_table(
        (
            Col("key id", "key"),
            Col("tenant", "key"),
            Col("status", "key"),
            Col("roles"),
            Col("name", "text", drop=1),
            Col("created (UTC)", drop=2),
        ),
        [
            (
                key.key_id,
                key.tenant_id,
                "active" if key.active else "revoked",
                ",".join(key.roles),
                key.name,
                key.created_at.strftime("%Y-%m-%d %H:%M"),
            )
            for key in keys
        ],
    )


@keys_app.command("revoke")
def keys_revoke_command(
    key_id: Annotated[str, typer.Argument(help="The key to revoke (ajk_…, as `agentjournal keys list` shows)")],
    by: ByOption = None,
) -> None:
    """Revoke an API key at once: its secret authenticates nobody from now on. Recorded as
    ApiKeyRevoked on `api-keys`; revoking a revoked key changes nothing.

    Example: agentjournal keys revoke ajk_3f9a0c21b7de
    """
    from agentjournal.api.keys import ApiKeys

    keys = ApiKeys(open_journal())
    before = keys.get(key_id)
    key = keys.revoke(key_id, by=by or _local_user())
    if before.revoked_at is not None and key.revoked_at is not None:
        when = key.revoked_at.strftime("%Y-%m-%d %H:%M:%S")
        console.print(f"{key_id} was already revoked ({when} UTC by {key.revoked_by})", highlight=False, markup=False)
        return
    console.print(f"revoked {key_id} of tenant {key.tenant_id} ({key.name})", highlight=False, markup=False)


def _record(key: KeyInfo) -> dict[str, object]:
    return {
        "key_id": key.key_id,
        "tenant_id": key.tenant_id,
        "name": key.name,
        "roles": list(key.roles),
        "status": "active" if key.active else "revoked",
        "created_at": key.created_at,
        "created_by": key.created_by,
        "revoked_at": key.revoked_at,
        "revoked_by": key.revoked_by,
    }
