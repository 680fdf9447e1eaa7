"""Alembic environment: runs migrations over an async engine for any of the three backends."""

import asyncio

from alembic import context
from alembic.operations import ops
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

import neutrino.db.schema.all  # noqa: F401  (registers every table on the metadata)
from neutrino.db.schema.base import metadata

config = context.config


def _whole_table_drops(_context, _revision, directives):  # type: ignore[no-untyped-def]
    """Autogenerate: a downgrade that drops a table drops its indexes with it, not one by one first
    (MariaDB refuses to drop an index a foreign key still needs)."""
    for container in directives[0].downgrade_ops_list:
        dropped = {op.table_name for op in container.ops if isinstance(op, ops.DropTableOp)}
        kept = []
        for op in container.ops:
            if isinstance(op, ops.ModifyTableOps) and op.table_name in dropped:
                op.ops = [o for o in op.ops if not isinstance(o, ops.DropIndexOp)]
                if not op.ops:
                    continue
            kept.append(op)
        container.ops = kept


def _run(sync_conn):  # type: ignore[no-untyped-def]
    context.configure(connection=sync_conn, target_metadata=metadata, render_as_batch=True,
                      compare_type=True, process_revision_directives=_whole_table_drops)
    with context.begin_transaction():
        context.run_migrations()


async def _main() -> None:
    engine = create_async_engine(config.get_main_option("sqlalchemy.url"), poolclass=NullPool)
    async with engine.connect() as conn:
        await conn.run_sync(_run)
        await conn.commit()
    await engine.dispose()


def _in_running_loop() -> bool:
    try:
        asyncio.get_running_loop()
        return True
    except RuntimeError:
        return False


if _in_running_loop():  # called from async code through to_thread: give it its own loop
    import threading

    error: list[BaseException] = []

    def _thread() -> None:
        try:
            asyncio.run(_main())
        except BaseException as exc:  # noqa: BLE001
            error.append(exc)

    th = threading.Thread(target=_thread)
    th.start()
    th.join()
    if error:
        raise error[0]
else:
    asyncio.run(_main())
