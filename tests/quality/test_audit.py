"""Label audit: agreement sums, ranking, precision@k, outputs and the exclusion list."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kelpseg.cli.app import main
from kelpseg.errors import KelpsegError
from kelpseg.inference.rasters import as_source
from kelpseg.io.tiles import write_label, write_probability, write_tile
from kelpseg.quality.audit import (
    SCORES,
    TileAgreement,
    audit_labels,
    drop_small_blobs,
    mislabelled_ids,
    precision_at_k,
    rank_tiles,
    tile_agreement,
    unmatched_region,
)
from kelpseg.quality.config import AuditConfig
from kelpseg.quality.report import write_audit
from kelpseg.split.config import SplitConfig
from kelpseg.split.folds import assign_folds, read_exclusion_list
from tests.browser import browser_test, load_page
from tests.conftest import make_tile_array

SIZE = 40


def test_tile_agreement_sums_match_hand_counts() -> None:
    label = np.zeros((4, 4), np.uint8)
    label[0, :2] = 1
    prob = np.zeros((4, 4), np.float32)
    prob[0, 0], prob[0, 1], prob[3, 3] = 1.0, 0.5, 0.5
    a = tile_agreement(prob, label, threshold=0.5)
    assert (a.label_pixels, a.pred_pixels, a.overlap_pixels) == (2, 3, 2)
    assert (a.pred_mass, a.soft_overlap) == (2.0, 1.5)
    assert a.soft_dice == pytest.approx(2 * 1.5 / 4)
    assert a.dice == pytest.approx(2 * 2 / 5)
    assert (a.missed_pixels, a.extra_pixels) == (0, 1)
    assert tile_agreement(prob, label, threshold=0.6).missed_pixels == 1
    empty = tile_agreement(np.zeros((4, 4)), np.zeros((4, 4)), 0.5)
    assert empty.soft_dice == 1.0 and empty.dice == 1.0
    with pytest.raises(KelpsegError, match="differ in size"):
        tile_agreement(np.zeros((4, 4)), np.zeros((3, 4)), 0.5)


def test_small_predicted_blobs_can_be_ignored() -> None:
    label = np.zeros((12, 12), np.uint8)
    prob = np.zeros((12, 12), np.float32)
    prob[0, 0] = prob[5, 5] = prob[6, 6] = 0.9  # speckle: one pixel, and two touching diagonally
    prob[8:12, 8:12] = 0.8  # a 16-pixel bed
    assert drop_small_blobs(prob >= 0.5, 2).sum() == 18
    assert drop_small_blobs(prob >= 0.5, 3).sum() == 16
    plain = tile_agreement(prob, label, 0.5)
    cleaned = tile_agreement(prob, label, 0.5, min_blob_pixels=3)
    assert (plain.pred_pixels, cleaned.pred_pixels) == (19, 16)
    assert cleaned.pred_mass == pytest.approx(16 * 0.8)


def test_unmatched_region_counts_the_interior_the_other_mask_misses() -> None:
    mask = np.zeros((40, 40), bool)
    mask[2:12, 2:12] = True  # compact 10 x 10 bed: 6 x 6 pixels at depth >= 3
    mask[20, 2:38] = mask[21, 2:38] = True  # a thin bed two pixels wide: no interior
    none = np.zeros_like(mask)
    assert unmatched_region(mask, none, core_depth=3) == 36
    assert unmatched_region(mask, none, core_depth=1) == 100
    half = np.zeros_like(mask)
    half[2:12, 2:7] = True  # the other mask holds the bed's left half
    # interior rows and columns 4..9; not held: columns 7..9 (18 pixels), times half missed
    assert unmatched_region(mask, half, core_depth=3) == pytest.approx(18 * 0.5)
    thin_only = np.where(np.arange(40)[:, None] >= 15, mask, False)
    assert unmatched_region(thin_only, none, core_depth=3) == 0.0
    assert unmatched_region(none, mask, core_depth=3) == 0.0


def test_region_score_ranks_a_wrong_bed_beside_real_ones_above_a_missed_thin_bed(
    tmp_path: Path,
) -> None:
    size = 120
    real = np.zeros((size, size), np.uint8)
    real[5:45, 5:45] = 1  # a real bed the model finds
    wrong_bed = real.copy()
    wrong_bed[70:110, 60:100] = 1  # plus a 1,600-pixel bed drawn where there is none: Dice 0.67
    thin = np.zeros((size, size), np.uint8)
    thin[100:102, 10:110] = 1  # only a thin fringing bed, which the model misses
    labels = {"WRONGBED": wrong_bed, "THIN": thin, "GOOD": real}
    probs = {"WRONGBED": real.astype(np.float32), "THIN": np.zeros((size, size), np.float32)}
    probs["GOOD"] = real.astype(np.float32)
    for tile_id, label in labels.items():
        write_label(tmp_path / "train_kelp" / f"{tile_id}_kelp.tif", label)
        write_tile(tmp_path / "train_satellite" / f"{tile_id}_satellite.tif",
                   make_tile_array(size=size))  # fmt: skip
    per_tile = audit_labels(probs, tmp_path, AuditConfig(), show_progress=False).ranking
    assert list(per_tile["tile_id"][:2]) == ["THIN", "WRONGBED"]  # what the issue saw
    both = audit_labels(
        probs, tmp_path, AuditConfig(score="dice_area_region"), show_progress=False
    ).ranking
    assert list(both["tile_id"]) == ["WRONGBED", "THIN", "GOOD"]
    row = both.set_index("tile_id").loc["WRONGBED"]
    assert row["missed_region"] == 36 * 36 and row["extra_region"] == 0
    region = audit_labels(probs, tmp_path, AuditConfig(score="region"), show_progress=False)
    assert region.ranking.set_index("tile_id").loc["THIN", "score"] == 0.0


def _table(rows: dict[str, tuple[int, int, int]]) -> pd.DataFrame:
    """tile -> (label pixels, predicted pixels, overlap) as the ranking's input."""
    records = []
    for tile_id, (label, pred, overlap) in rows.items():
        agreement = TileAgreement(label, pred, overlap, float(pred), float(overlap))
        records.append(
            {
                "tile_id": tile_id,
                "dice": agreement.dice,
                "soft_dice": agreement.soft_dice,
                "label_pixels": label,
                "pred_pixels": pred,
                "missed_pixels": agreement.missed_pixels,
                "extra_pixels": agreement.extra_pixels,
                "pred_mass": agreement.pred_mass,
                "missed_region": agreement.missed_region,
                "extra_region": agreement.extra_region,
            }
        )
    return pd.DataFrame(records)


CRAFTED = {
    "WRONG": (0, 400, 0),  # empty label where the model sees a large bed
    "OTHER": (300, 280, 20),  # another date's beds
    "TINY": (0, 3, 0),  # three stray predicted pixels
    "GOOD": (500, 480, 450),
    "EMPTY": (0, 0, 0),
    "RIM": (1500, 1600, 1200),  # large bed, blurry edges: many pixels, fair Dice
}


def test_default_score_puts_whole_tile_disagreement_first() -> None:
    ranked = rank_tiles(_table(CRAFTED), AuditConfig(top=2, min_score=0.5))
    assert list(ranked["tile_id"][:2]) == ["WRONG", "OTHER"]
    assert list(ranked["rank"]) == list(range(1, len(CRAFTED) + 1))
    assert ranked["score"].is_monotonic_decreasing
    assert list(ranked.loc[ranked["flagged"], "tile_id"]) == ["WRONG", "OTHER"]
    assert ranked.set_index("tile_id").loc["EMPTY", "score"] == 0.0


def test_plain_dice_ranks_tiny_disagreements_with_wrong_labels() -> None:
    plain = rank_tiles(_table(CRAFTED), AuditConfig(score="dice"))
    assert "TINY" in set(plain["tile_id"][:2])  # 1 - Dice is 1 for three stray pixels
    area = rank_tiles(_table(CRAFTED), AuditConfig(score="area"))
    assert area["tile_id"].iloc[0] == "RIM"  # the largest bed wins on raw pixel counts
    default = rank_tiles(_table(CRAFTED), AuditConfig())
    assert default.set_index("tile_id").loc["TINY", "rank"] > 3
    assert set(SCORES) == {
        "dice_area",
        "soft_dice_area",
        "region",
        "dice_area_region",
        "dice",
        "area",
    }
    soft = rank_tiles(_table(CRAFTED), AuditConfig(score="soft_dice_area"))
    assert list(soft["tile_id"][:2]) == ["WRONG", "OTHER"]


def test_flagging_needs_both_top_rank_and_min_score() -> None:
    ranked = rank_tiles(_table(CRAFTED), AuditConfig(top=1, min_score=0.0))
    assert ranked["flagged"].sum() == 1
    ranked = rank_tiles(_table(CRAFTED), AuditConfig(top=10, min_score=0.99))
    assert ranked["flagged"].sum() == 0


def test_unknown_score_is_an_error() -> None:
    with pytest.raises(KelpsegError, match="unknown score"):
        rank_tiles(_table(CRAFTED), AuditConfig(score="nope"))


def test_precision_at_k() -> None:
    ranking = pd.DataFrame({"rank": [2, 1, 3, 4], "tile_id": ["B", "A", "C", "D"]})
    assert precision_at_k(ranking, ["A", "C"], 1) == 1.0
    assert precision_at_k(ranking, ["A", "C"], 2) == 0.5
    assert precision_at_k(ranking, ["A", "C"], 3) == pytest.approx(2 / 3)
    assert precision_at_k(ranking, ["A", "C"], 10) == 0.5  # over the 4 there are
    assert np.isnan(precision_at_k(ranking, ["A"], 0))
    truth = pd.DataFrame({"tile_id": ["A", "B"], "mislabelled": [True, False]})
    assert mislabelled_ids(truth) == ["A"]


def _bed(rows: slice, cols: slice) -> np.ndarray:
    mask = np.zeros((SIZE, SIZE), np.uint8)
    mask[rows, cols] = 1
    return mask


@pytest.fixture
def audited(tmp_path: Path) -> tuple[Path, Path, pd.DataFrame]:
    """Six labelled tiles, out-of-fold probabilities, and a catalog with folds.

    T0 has a wrongly empty label, T1 a label of another place; the rest agree.
    """
    data, preds = tmp_path / "data", tmp_path / "oof"
    beds = [_bed(slice(5, 20), slice(5, 20)), _bed(slice(20, 35), slice(10, 30))]
    rows = []
    for i in range(6):
        tile_id = f"T{i}"
        truth = beds[i % 2]
        label = {0: np.zeros_like(truth), 1: beds[0] if i % 2 else beds[1]}.get(i, truth)
        image = write_tile(
            data / "train_satellite" / f"{tile_id}_satellite.tif", make_tile_array(SIZE, i)
        )
        mask = write_label(data / "train_kelp" / f"{tile_id}_kelp.tif", label)
        write_probability(preds / f"{tile_id}_prob.tif", 0.05 + 0.9 * truth.astype(np.float32))
        rows.append((tile_id, "train", str(image), str(mask), i % 2))
    catalog = pd.DataFrame(rows, columns=["tile_id", "split", "image_path", "mask_path", "fold"])
    path = tmp_path / "split.parquet"
    catalog.to_parquet(path, index=False)
    return path, preds, catalog


def test_audit_flags_the_wrong_labels_and_writes_outputs(
    audited: tuple[Path, Path, pd.DataFrame], tmp_path: Path
) -> None:
    catalog_path, preds, _ = audited
    cfg = AuditConfig(top=3, min_score=0.5)
    result = audit_labels(preds, catalog_path, cfg, show_progress=False)
    assert result.flagged == ["T1", "T0"] or result.flagged == ["T0", "T1"]
    assert set(result.ranking["tile_id"]) == {f"T{i}" for i in range(6)}
    assert result.ranking["fold"].notna().all()
    paths = write_audit(result, preds, tmp_path / "audit")
    assert pd.read_parquet(paths.ranking)["tile_id"].tolist() == result.ranking["tile_id"].tolist()
    assert len(pd.read_csv(paths.csv)) == 6
    assert read_exclusion_list(paths.exclude) == result.flagged
    page = paths.gallery.read_text()
    assert len(re.findall(r'<img src="data:image/webp;base64,', page)) == 3
    assert page.count('class="flagged"') == 2
    shown = result.ranking["tile_id"].head(3).tolist()
    assert re.findall(r'<a href="([^"]*)"', page) == [f"gallery_files/{t}.png" for t in shown]
    assert sorted(p.name for p in (paths.gallery.parent / "gallery_files").iterdir()) == sorted(
        f"{t}.png" for t in shown
    )
    assert paths.config.is_file()


@browser_test
def test_the_audit_gallery_loads_in_chromium(
    audited: tuple[Path, Path, pd.DataFrame], tmp_path: Path
) -> None:
    catalog_path, preds, _ = audited
    result = audit_labels(preds, catalog_path, AuditConfig(top=4), show_progress=False)
    paths = write_audit(result, preds, tmp_path / "audit")
    load_page(paths.gallery, tmp_path).assert_clean(images=4)


def test_exclusion_list_is_accepted_by_split(
    audited: tuple[Path, Path, pd.DataFrame], tmp_path: Path
) -> None:
    catalog_path, preds, catalog = audited
    result = audit_labels(preds, catalog_path, AuditConfig(top=2), show_progress=False)
    paths = write_audit(result, preds, tmp_path / "audit")
    table = catalog.assign(aoi_id=range(len(catalog)), has_kelp=True)
    out, summary = assign_folds(
        table, SplitConfig(k=2, stratify=[]), read_exclusion_list(paths.exclude)
    )
    assert summary.excluded == 2
    assert set(out.loc[out["subset"] == "excluded", "tile_id"]) == {"T0", "T1"}


def test_audit_of_one_fold(audited: tuple[Path, Path, pd.DataFrame]) -> None:
    catalog_path, preds, catalog = audited
    result = audit_labels(preds, catalog_path, AuditConfig(fold=1), show_progress=False)
    assert set(result.ranking["tile_id"]) == {"T1", "T3", "T5"}
    assert (result.ranking["fold"] == 1).all()
    no_blobs = audit_labels(
        preds, catalog_path, AuditConfig(fold=1, min_blob_pixels=10_000), show_progress=False
    )
    assert (no_blobs.ranking["pred_pixels"] == 0).all()
    data_dir = Path(catalog["image_path"][0]).parent.parent
    with pytest.raises(KelpsegError, match="fold"):
        audit_labels(preds, data_dir, AuditConfig(fold=1), show_progress=False)


def test_tiles_without_predictions_are_reported(
    audited: tuple[Path, Path, pd.DataFrame], tmp_path: Path
) -> None:
    catalog_path, preds, _ = audited
    (preds / "T5_prob.tif").unlink()
    result = audit_labels(preds, catalog_path, show_progress=False)
    assert result.unpredicted == ["T5"] and len(result.ranking) == 5
    empty = tmp_path / "none"
    empty.mkdir()
    with pytest.raises(KelpsegError, match="has a prediction"):
        audit_labels(empty, catalog_path, show_progress=False)


def test_cli_audit_prints_precision_against_the_truth(
    audited: tuple[Path, Path, pd.DataFrame], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    catalog_path, preds, _ = audited
    truth = tmp_path / "truth.parquet"
    pd.DataFrame({"tile_id": ["T0", "T1", "T2"], "mislabelled": [True, True, False]}).to_parquet(
        truth
    )
    out = tmp_path / "audit"
    argv = ["labels", "audit", "--predictions", str(preds), "--data", str(catalog_path)]
    code = main([*argv, "--out", str(out), "--top", "4", "--truth", str(truth), "--quiet"])
    text = capsys.readouterr().out
    assert code == 0
    assert "precision@2 1.00" in text and "2 labels flagged of 6" in text
    assert read_exclusion_list(out / "exclude.txt") == ["T0", "T1"] or read_exclusion_list(
        out / "exclude.txt"
    ) == ["T1", "T0"]
    bad = main([*argv, "--out", str(out), "--set", "score=nope"])
    assert bad == 2


def _committee(preds: Path, tmp_path: Path) -> tuple[Path, Path]:
    """Two members, each right where the other predicts a false bed on a clean tile.

    Member A (the fixture's predictions plus a false bed on T3) and member B (plus one on T2);
    both see the beds the wrong labels of T0 and T1 miss or invent.
    """
    source = as_source(preds)
    members = []
    for name, tile in (("a", "T3"), ("b", "T2")):
        folder = tmp_path / f"oof-{name}"
        for tile_id in source:
            prob = np.asarray(source[tile_id], np.float32)
            if tile_id == tile:
                prob = np.where(_bed(slice(0, 15), slice(25, 40)) == 1, np.float32(0.8), prob)
            write_probability(folder / f"{tile_id}_prob.tif", prob)
        members.append(folder)
    return members[0], members[1]


def test_committee_consensus_keeps_only_labels_every_member_disputes(
    audited: tuple[Path, Path, pd.DataFrame], tmp_path: Path
) -> None:
    catalog_path, preds, _ = audited
    a, b = _committee(preds, tmp_path)
    cfg = AuditConfig(top=4, min_score=0.2)
    alone = {m.name: audit_labels(m, catalog_path, cfg, show_progress=False) for m in (a, b)}
    assert set(alone["oof-a"].flagged) == {"T0", "T1", "T3"}
    assert set(alone["oof-b"].flagged) == {"T0", "T1", "T2"}
    both = audit_labels([a, b], catalog_path, cfg, show_progress=False)
    assert set(both.flagged) == {"T0", "T1"}
    ranking = both.ranking.set_index("tile_id")
    alone_scores = {k: r.ranking.set_index("tile_id")["score"] for k, r in alone.items()}
    np.testing.assert_allclose(ranking["score_0"], alone_scores["oof-a"][ranking.index])
    np.testing.assert_allclose(ranking["score_1"], alone_scores["oof-b"][ranking.index])
    np.testing.assert_allclose(ranking["score"], ranking[["score_0", "score_1"]].min(axis=1))
    mean = audit_labels(
        [a, b], catalog_path, cfg.model_copy(update={"combine": "mean"}), show_progress=False
    )
    scores = mean.ranking.set_index("tile_id")
    np.testing.assert_allclose(scores["score"], scores[["score_0", "score_1"]].mean(axis=1))
    assert 0.0 < scores.loc["T2", "score"] < scores.loc["T0", "score"]
    # The members' mean probability of a bed only one member sees is (0.8 + 0.05) / 2 < 0.5.
    soft = audit_labels(
        [a, b], catalog_path, cfg.model_copy(update={"combine": "mean_prob"}), show_progress=False
    )
    assert set(soft.flagged) == {"T0", "T1"}
    assert soft.ranking.set_index("tile_id").loc["T2", "dice"] == 1.0  # the false bed is gone


def test_cli_audits_a_committee(
    audited: tuple[Path, Path, pd.DataFrame], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    catalog_path, preds, _ = audited
    a, b = _committee(preds, tmp_path)
    out = tmp_path / "audit"
    code = main(
        ["labels", "audit", "--predictions", str(a), "--predictions", str(b), "--data",
         str(catalog_path), "--out", str(out), "--top", "4", "--set", "min_score=0.2", "--quiet"]
    )  # fmt: skip
    assert code == 0, capsys.readouterr().out
    assert sorted(read_exclusion_list(out / "exclude.txt")) == ["T0", "T1"]
    table = pd.read_csv(out / "label_audit.csv")
    assert {"score_0", "score_1"} <= set(table.columns)
    page = (out / "gallery.html").read_text()
    assert len(re.findall(r'<img src="data:image/webp;base64,', page)) == 4


def test_committee_members_must_cover_the_same_tile_size(
    audited: tuple[Path, Path, pd.DataFrame], tmp_path: Path
) -> None:
    catalog_path, preds, _ = audited
    other = {f"T{i}": np.zeros((SIZE, SIZE + 1), np.float32) for i in range(6)}
    with pytest.raises(KelpsegError, match="differ in size"):
        audit_labels([preds, other], catalog_path, show_progress=False)


@pytest.mark.parametrize(
    "path", sorted(Path(__file__).parents[2].glob("configs/audit/*.yaml")), ids=lambda p: p.name
)
def test_shipped_audit_configs_validate(path: Path) -> None:
    from kelpseg.config import load_config

    config = load_config(AuditConfig, path)
    assert config != AuditConfig()  # a shipped file changes something
