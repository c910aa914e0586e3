"""Synthetic shopping sessions: the built-in default data, with the 18 columns of UCI Online Shoppers.

The generative story (frozen; models are tuned on what it produces, so changing it changes results):

1. Context. ``Month`` (Feb..Dec, no Jan/Apr, weighted like the UCI file), ``VisitorType``, ``Weekend``,
   and the codes ``OperatingSystems``, ``Browser``, ``Region``, ``TrafficType`` are drawn from skewed
   frequencies. ``SpecialDay`` is non-zero (0.2..1.0) for a quarter of February and May sessions.
2. Two latent traits per session: *intent* ``u`` (how much the shopper wants to buy) and *engagement*
   ``e`` (how much they browse, independent of intent). Intent is standard normal shifted by season
   (November and October up, February down), visitor type (new visitors arrive with a goal) and
   traffic source (some campaign codes bring buyers, some bring bouncers).
3. Behaviour. Page counts (administrative, informational, product) are negative-binomial with means
   that grow with engagement and, less, with intent. The time per product page is log-normal around
   35 s (sigma 0.8); durations are counts times per-page times (10% noise). Bounce and exit rates
   fall with intent and are capped at 0.2 like Google Analytics'; a one-page session bounces.
4. Purchase. The log-odds are ``1.3 u - 1.6``, minus ``3 (log(dwell / 35 s))^2`` (skimmers and
   stallers rarely buy: an inverted U that a linear model cannot draw), minus ``SpecialDay`` (shoppers
   near a holiday browse for later), minus 2 for a one-page session, plus interactions that a linear
   model cannot draw either: on weekends and in November returning visitors buy more and new visitors
   less, and engagement helps new visitors but not returning ones. About 15-16% of sessions buy.
5. ``PageValues`` follows the purchase, as in Google Analytics, where a page earns value by preceding a
   transaction: 70% of buyers and 8-16% of non-buyers (rising with intent) see valued pages.

Measured on 20,000 rows (seed 0, 5-fold stratified CV, ``benchmarks/accuracy.py``): logistic
regression on the encoded features scores ROC-AUC 0.868 / PR-AUC 0.648, the default MLP 0.895 / 0.708.

The same ``seed`` gives the same rows on every platform (NumPy's PCG64 generator).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from intent_edge.errors import UsageError

MONTHS = {"Feb": 0.015, "Mar": 0.155, "May": 0.273, "June": 0.023, "Jul": 0.035, "Aug": 0.035,
          "Sep": 0.036, "Oct": 0.045, "Nov": 0.243, "Dec": 0.14}
MONTH_INTENT = {"Feb": -1.0, "Mar": -0.3, "May": -0.25, "June": -0.3, "Jul": 0.0, "Aug": 0.05,
                "Sep": 0.2, "Oct": 0.3, "Nov": 0.55, "Dec": -0.1}
VISITORS = {"Returning_Visitor": 0.856, "New_Visitor": 0.137, "Other": 0.007}
VISITOR_INTENT = {"Returning_Visitor": 0.0, "New_Visitor": 0.45, "Other": 0.1}
OPERATING_SYSTEMS = {2: 0.535, 1: 0.21, 3: 0.207, 4: 0.039, 8: 0.0064, 6: 0.0016, 7: 0.0006, 5: 0.0004}
BROWSERS = {2: 0.646, 1: 0.2, 4: 0.06, 5: 0.038, 6: 0.014, 10: 0.013, 8: 0.011, 3: 0.0085, 13: 0.005,
            7: 0.004, 12: 0.0008, 11: 0.0005, 9: 0.0002}
REGIONS = {1: 0.388, 3: 0.195, 4: 0.096, 2: 0.092, 6: 0.065, 7: 0.062, 9: 0.041, 8: 0.035, 5: 0.026}
TRAFFIC = {2: 0.317, 1: 0.199, 3: 0.166, 4: 0.087, 13: 0.06, 10: 0.036, 6: 0.036, 8: 0.028, 5: 0.021,
           11: 0.02, 20: 0.016, 9: 0.0034, 7: 0.0032, 15: 0.0031, 19: 0.0014, 14: 0.0011, 18: 0.0008,
           16: 0.0003, 12: 0.0001, 17: 0.0001}
TRAFFIC_INTENT = {2: 0.3, 1: -0.2, 3: -0.5, 4: 0.1, 13: -0.8, 10: 0.2, 6: -0.3, 8: 0.5, 5: 0.4,
                  11: 0.1, 20: 0.4, 9: -0.5, 7: 0.3, 15: -1.0, 19: -0.5, 14: 0.0, 18: -1.0, 16: 0.3,
                  12: 0.0, 17: 0.0}


# Documented covariate shifts (`data synth --shift`), for testing monitoring: who arrives changes, the
# story of how a shopper decides does not. Each is strong enough that the default model's score moves
# past the drift rule's PSI 0.2 on 5,000 rows (at 60% and 75% it stayed near 0.15).
SHIFTS = {
    # a retargeting campaign, traffic source 21 (a code training never saw), brings 80% of sessions:
    # shoppers back for their carts (intent +3, so the buyer share goes from about 16% to 52%)
    "traffic-source": {"traffic": {**{k: v * 0.2 for k, v in TRAFFIC.items()}, 21: 0.8},
                       "traffic_intent": {**TRAFFIC_INTENT, 21: 3.0}},
    # the holiday peak: November brings 90% of sessions and December the rest
    "season": {"months": {**dict.fromkeys(MONTHS, 0.0), "Nov": 0.9, "Dec": 0.1}},
}


def _draw(rng: np.random.Generator, table: dict, n: int) -> np.ndarray:
    keys = list(table)
    weights = np.array([table[k] for k in keys], dtype=float)
    return np.array(keys, dtype=object if isinstance(keys[0], str) else np.int64)[
        rng.choice(len(keys), size=n, p=weights / weights.sum())]


def _counts(rng: np.random.Generator, mean: np.ndarray, dispersion: float) -> np.ndarray:
    # Negative binomial as a gamma-Poisson mixture: over-dispersed like real page counts.
    return rng.poisson(rng.gamma(dispersion, mean / dispersion)).astype(np.int64)


def generate_sessions(rows: int, seed: int | list[int] = 0, shift: str | None = None) -> pd.DataFrame:
    """``rows`` synthetic sessions in the UCI column layout; deterministic for ``seed`` (an integer, or a
    list of them as numpy's SeedSequence takes it). ``shift`` names one of :data:`SHIFTS`."""
    if rows < 1:
        raise UsageError("rows must be at least 1")
    if shift is not None and shift not in SHIFTS:
        raise UsageError(f"unknown shift {shift!r}; choose one of {', '.join(SHIFTS)}")
    changed = SHIFTS.get(shift, {})
    rng = np.random.default_rng(seed)
    month = _draw(rng, changed.get("months", MONTHS), rows)
    visitor = _draw(rng, VISITORS, rows)
    weekend = rng.random(rows) < 0.23
    operating_system = _draw(rng, OPERATING_SYSTEMS, rows)
    browser = _draw(rng, BROWSERS, rows)
    region = _draw(rng, REGIONS, rows)
    traffic = _draw(rng, changed.get("traffic", TRAFFIC), rows)
    near_holiday = np.isin(month, ["Feb", "May"]) & (rng.random(rows) < 0.25)
    special_day = np.where(near_holiday, rng.integers(1, 6, rows) / 5.0, 0.0)

    intent = (rng.standard_normal(rows) + np.vectorize(MONTH_INTENT.get)(month)
              + np.vectorize(VISITOR_INTENT.get)(visitor)
              + np.vectorize(changed.get("traffic_intent", TRAFFIC_INTENT).get)(traffic))
    engagement = rng.standard_normal(rows)

    product = _counts(rng, np.exp(2.7 + 0.6 * engagement + 0.25 * intent), 1.5)
    administrative = _counts(rng, np.exp(0.2 + 0.5 * engagement + 0.2 * intent), 0.8)
    informational = _counts(rng, np.exp(-1.3 + 0.5 * engagement), 0.6)
    dwell = np.exp(np.log(35.0) + 0.25 * engagement + 0.8 * rng.standard_normal(rows))
    product_duration = product * dwell * np.exp(0.1 * rng.standard_normal(rows))
    administrative_duration = administrative * np.exp(np.log(25.0) + 0.9 * rng.standard_normal(rows))
    informational_duration = informational * np.exp(np.log(40.0) + 1.0 * rng.standard_normal(rows))

    pages = product + administrative + informational
    bounce = np.clip(rng.gamma(0.7, 0.025 * np.exp(-0.5 * intent)), 0.0, 0.2)
    exits = np.clip(bounce + rng.gamma(1.5, 0.02 * np.exp(-0.3 * intent)), 0.0, 0.2)
    single_page = pages <= 1
    bounce[single_page], exits[single_page] = 0.2, 0.2

    is_new, is_returning = (visitor == "New_Visitor").astype(float), (visitor == "Returning_Visitor").astype(float)
    log_odds = (1.3 * intent - 1.6 - 3.0 * np.log(dwell / 35.0) ** 2 - 1.0 * special_day
                + (weekend + 1.5 * (month == "Nov")) * (0.6 * is_returning - 1.0 * is_new)
                + 1.2 * engagement * (is_new - is_returning)
                - 2.0 * single_page)
    revenue = rng.random(rows) < 1.0 / (1.0 + np.exp(-log_odds))

    valued = np.where(revenue, rng.random(rows) < 0.7,
                      rng.random(rows) < 0.08 + 0.08 / (1.0 + np.exp(-intent)))
    page_values = np.where(valued, np.exp(np.where(revenue, np.log(28.0), np.log(12.0))
                                          + np.where(revenue, 0.8, 1.0) * rng.standard_normal(rows)), 0.0)

    return pd.DataFrame({
        "Administrative": administrative,
        "Administrative_Duration": administrative_duration.round(2),
        "Informational": informational,
        "Informational_Duration": informational_duration.round(2),
        "ProductRelated": product,
        "ProductRelated_Duration": product_duration.round(2),
        "BounceRates": bounce.round(6),
        "ExitRates": exits.round(6),
        "PageValues": page_values.round(4),
        "SpecialDay": special_day,
        "Month": month.astype(str),
        "OperatingSystems": operating_system,
        "Browser": browser,
        "Region": region,
        "TrafficType": traffic,
        "VisitorType": visitor.astype(str),
        "Weekend": weekend,
        "Revenue": revenue,
    })


SYNTH_BLOCK_ROWS = 1_000_000  # above this many rows, sessions are generated and written a block at a time


def write_sessions(path, rows: int, seed: int = 0, shift: str | None = None) -> dict:
    """Generate ``rows`` sessions and write them (CSV or Parquet, atomically); returns the buyer share.
    Up to :data:`SYNTH_BLOCK_ROWS` rows are one draw; beyond, block ``b`` is drawn with the seed
    ``[seed, b]``, so ten million rows are written in the memory of one million."""
    from intent_edge.data.io import write_table

    if rows <= SYNTH_BLOCK_ROWS:
        frame = generate_sessions(rows, seed, shift)
        write_table(frame, path)
        return {"rows": rows, "buyers": float(frame["Revenue"].mean())}
    import pyarrow as pa
    import pyarrow.parquet as pq

    from intent_edge.data.io import PARQUET_SUFFIXES
    from intent_edge.fileio import atomic_path

    parquet, buyers = Path(path).suffix.lower() in PARQUET_SUFFIXES, 0
    with atomic_path(path) as temporary:
        writer = None
        with open(temporary, "wb") if parquet else open(temporary, "w", encoding="utf-8", newline="") as handle:
            for block, start in enumerate(range(0, rows, SYNTH_BLOCK_ROWS)):
                frame = generate_sessions(min(SYNTH_BLOCK_ROWS, rows - start), [seed, block], shift)
                buyers += int(frame["Revenue"].sum())
                if parquet:
                    table = pa.Table.from_pandas(frame, preserve_index=False)
                    writer = writer or pq.ParquetWriter(handle, table.schema)
                    writer.write_table(table)
                else:
                    for column in frame.columns:  # as write_table writes CSV: booleans as TRUE/FALSE
                        if pd.api.types.is_bool_dtype(frame[column]):
                            frame[column] = np.where(frame[column], "TRUE", "FALSE")
                    frame.to_csv(handle, index=False, header=block == 0)
            if writer is not None:
                writer.close()
    return {"rows": rows, "buyers": buyers / rows}
