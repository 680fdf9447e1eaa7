"""The ``neutrino`` command: server, db, up, identity (and, with later roles, agent/instance)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from neutrino.config import ConfigError, Settings, load_settings


def _settings(args: argparse.Namespace, **overrides: dict[str, object]) -> Settings:
    server_over = dict(overrides.pop("server", {}))
    if getattr(args, "state_dir", None):
        server_over["state_dir"] = str(Path(args.state_dir).resolve())
    if server_over:
        overrides["server"] = server_over
    return load_settings(getattr(args, "config", None), overrides=overrides)


def _configure_logging(level: str) -> None:
    from neutrino.logging_setup import configure_logging

    configure_logging(level)


def cmd_server(args: argparse.Namespace) -> int:
    from neutrino.cli.serve import run_server

    settings = _settings(args)
    _configure_logging(settings.server.log_level)
    return run_server(settings)


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    from neutrino.db.migrate import upgrade

    settings = _settings(args)
    if settings.database_url.startswith("sqlite"):
        settings.state_path.mkdir(parents=True, exist_ok=True)
    upgrade(settings.database_url)
    print(f"database at head ({_redact(settings.database_url)})")
    return 0


def cmd_up(args: argparse.Namespace) -> int:
    from neutrino.cli.allinone import run_all_in_one

    settings = _settings(args, server={"port": args.port, "host": args.host})
    if settings.server.api_workers > 1 or settings.server.rpc_workers > 0:
        raise ConfigError("neutrino up runs one process (its agent shares it): run neutrino server and "
                          "neutrino agent for [server] api_workers / rpc_workers")
    _configure_logging(settings.server.log_level)
    return asyncio.run(run_all_in_one(settings))


def cmd_agent(args: argparse.Namespace) -> int:
    from neutrino.cli.agent import agent_overrides, host_of, run_agent

    settings = _settings(args, agent=agent_overrides(args))
    _configure_logging(settings.server.log_level)
    return asyncio.run(run_agent(settings, host_of(settings), settings.agent.roles))


def _redact(url: str) -> str:
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        return f"{scheme}://{creds.split(':', 1)[0]}:***@{host}"
    return url


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="neutrino", description="Network connectivity as a service.")
    sub = parser.add_subparsers(dest="command", required=True)

    def with_config(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument("--config", help="configuration file (TOML); see docs/configuration.md")
        p.add_argument("--state-dir", help="state directory (default: $NEUTRINO_STATE_DIR or the user data dir)")
        return p

    p = with_config(sub.add_parser("server", help="run the Networking API server"))
    p.set_defaults(func=cmd_server)

    db = sub.add_parser("db", help="database schema management")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    p = with_config(db_sub.add_parser("upgrade", help="apply migrations up to the newest schema"))
    p.set_defaults(func=cmd_db_upgrade)

    p = with_config(sub.add_parser("up", help="run everything on this host (all-in-one)"))
    p.add_argument("--port", type=int, default=9696)
    p.add_argument("--host", default="127.0.0.1")
    p.set_defaults(func=cmd_up)

    from neutrino.cli.agent import add_arguments as agent_arguments

    p = with_config(sub.add_parser("agent", help="run the agent roles of one host"))
    agent_arguments(p)
    p.set_defaults(func=cmd_agent)

    from neutrino.cli.cleanup import register as register_cleanup
    from neutrino.cli.instance import register as register_instance

    register_instance(sub)
    register_cleanup(sub)

    from neutrino.identity.cli import register as register_identity

    register_identity(sub)
    ident = sub.choices["identity"]
    with_config(ident)
    ident.set_defaults(func=cmd_identity)
    return parser


def cmd_identity(args: argparse.Namespace) -> int:
    settings = _settings(args)
    return asyncio.run(args.handler(args, settings))


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except ConfigError as exc:
        print(f"neutrino: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # noqa: BLE001 - top level: one clear line, not a traceback
        from neutrino.cli.serve import AddressInUse
        from neutrino.db.migrate import SchemaOutOfDate

        if isinstance(exc, SchemaOutOfDate):
            print(f"neutrino: {exc}", file=sys.stderr)
            return 3
        if isinstance(exc, AddressInUse):
            print(f"neutrino: {exc}", file=sys.stderr)
            return 4
        logging.getLogger("neutrino").exception("fatal error")
        return 1


if __name__ == "__main__":
    sys.exit(main())
