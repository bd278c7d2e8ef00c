"""The export bench's floor writes what a version holds, byte for byte, or it measures nothing.

``bench.export --floor`` times a tight loop as the fastest a Python exporter of a version's three
files could go; the comparison means something only while its files are ours. Small data, so the
version is written in one process and the floor still splits it in two.
"""

from __future__ import annotations

from bench.export import FLOOR_FILES, build_database, run_floor, run_ours


def test_the_floor_writes_the_same_three_files_as_the_export(tmp_path):
    database = tmp_path / "bench.sqlite3"
    build_database(database, 6_000)
    (tmp_path / "ours").mkdir()
    (tmp_path / "floor").mkdir()

    ours = run_ours(database, tmp_path / "ours")
    floor = run_floor(database, tmp_path / "floor")

    assert floor["lines"] == ours["lines"] > 2_000  # about 15 % of the items are ties and give no line
    assert floor["annotations"] == ours["annotations"] == 6_000
    assert floor["files"] == {name: ours["files"][name] for name in FLOOR_FILES}
