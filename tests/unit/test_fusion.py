"""Reciprocal-rank fusion."""

from indexer.query import fuse


def test_item_in_both_lists_beats_items_in_one() -> None:
    fused = fuse([(1.0, ["a", "b", "c"]), (1.0, ["c", "d"])])
    assert fused[0][0] == "c"
    assert {cid for cid, _ in fused} == {"a", "b", "c", "d"}


def test_top_of_every_list_scores_one() -> None:
    fused = fuse([(1.0, ["a"]), (2.0, ["a"])])
    assert fused == [("a", 1.0)]


def test_empty_lists() -> None:
    assert fuse([(1.0, []), (1.0, [])]) == []
