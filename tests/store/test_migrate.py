"""Opening a store whose schema is current costs one query: no Alembic, no migration files."""

from __future__ import annotations

import subprocess
import sys

from modelloop.store import open_store
from modelloop.store.migrate import HEAD_REVISION, head_revision, stamped_revision

_OPEN = """
import sys
from modelloop.store import open_store
open_store(sys.argv[1]).close()
print(sorted(m for m in sys.modules if m.split(".")[0] == "alembic"))
"""


def _alembic_modules_after_open(url: str) -> str:
    proc = subprocess.run(
        [sys.executable, "-c", _OPEN, url], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def test_the_head_revision_constant_is_alembics_head():
    assert head_revision() == HEAD_REVISION


def test_a_current_store_opens_without_alembic(tmp_path):
    url = f"sqlite:///{tmp_path}/m.db"
    assert _alembic_modules_after_open(url) != "[]"  # a new store migrates, with Alembic
    assert _alembic_modules_after_open(url) == "[]"  # a current one does not need it
    store = open_store(url)
    assert stamped_revision(store.engine) == HEAD_REVISION
    store.close()


def test_a_new_database_has_no_revision(tmp_path):
    import sqlalchemy as sa

    engine = sa.create_engine(f"sqlite:///{tmp_path}/empty.db")
    assert stamped_revision(engine) is None
    engine.dispose()
