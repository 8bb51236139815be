"""Patients read from reports (name, birthday, exam date) matched to the hospital's MRI image folders.

Image folders are named ``NAME[_YYYY]_YYYYMMDD[ (n)]`` (see :func:`parse_folder_name`): the patient's name in
upper-case ASCII, an optional birth year, the exam (study) date and a counter for repeated exports. Exports of
one study (same name, birth year and exam date; ``" (2)"`` etc.) form one *study*: its first copy is the match,
the others its ``repeats``.

A wrong match is worse than none, so :class:`PatientMatcher` never guesses. Names are compared as
``fuzz.ratio`` (rapidfuzz, 0-100) of :func:`~spine_lib.matching.fuzzy.normalize_text` forms, then:

1. Whole names only: ``fuzz.ratio`` of the full names, never a substring score (``partial_ratio`` gives
   "NGUYEN VAN SON" 100 against "NGUYEN VAN SONG").
2. Candidates are the studies whose name scores ``>= threshold``.
3. A birthday, or a birth year when only the year is known (``Năm sinh: 1975``), excludes the studies whose
   folder carries another birth year (a folder without one stays). An exam date excludes the studies of other
   dates, when at least one candidate has that exact date (and, with ``exam_date_tolerance_days`` set, every
   study further than that from it).
4. A candidate whose name is not an exact match (score < 100) is accepted only if something confirms it: its
   birth year equals the patient's, or its exam date equals the exam date. No accepted candidate ->
   ``"no_match"``, naming the closest near-miss.
5. ``"ambiguous"`` (never a guess, every rival listed) when two or more remaining candidates score within
   :data:`TIE_MARGIN` points of the best accepted one: the dates already excluded whom they could, so nothing
   tells them apart. An unconfirmed near-miss counts as a rival too.
6. Otherwise ``"matched"``.

:meth:`PatientMatcher.match_many` scores every query against every distinct folder name at once
(``rapidfuzz.process.cdist``, all cores) and takes every decision with numpy over the sparse set of
(query, study) pairs that reach the threshold; only building the result objects loops, once per query.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Literal

import numpy as np
from rapidfuzz import fuzz, process

from spine_lib.errors import ConfigError, InputPathError
from spine_lib.matching.fuzzy import normalize_text
from spine_lib.sources.phenikaa import FOLDER_FORMAT, FOLDER_PATTERN

__all__ = [
    "BIRTH_YEAR_RANGE",
    "TIE_MARGIN",
    "ImageFolder",
    "MatchResult",
    "MatchStatus",
    "PatientMatcher",
    "parse_folder_name",
]

MatchStatus = Literal["matched", "ambiguous", "no_match"]

BIRTH_YEAR_RANGE: tuple[int, int] = (1900, 2030)
#: Candidates whose name scores are this close (points of ``fuzz.ratio``) cannot be told apart by name.
TIE_MARGIN = 1.0
#: How many candidates a result lists (ambiguous results list every rival).
TOP_CANDIDATES = 5
# Decision codes of match_many.
_MATCHED, _TIE, _UNCONFIRMED, _EXCLUDED, _NONE = range(5)
#: Upper bound of the score block one ``cdist`` call fills (cells), so memory stays flat for any size.
_BLOCK_CELLS = 8_000_000


@dataclass(frozen=True)
class ImageFolder:
    """One exported image folder, as its name describes it."""

    path: Path
    folder: str  # the folder's own name: "NGUYEN_VAN_SON_1962_20250718 (2)"
    name: str  # ASCII upper case, single spaces: "NGUYEN VAN SON"
    birth_year: int | None
    exam_date: date
    copy: int = 1  # 1 unless the name ends in " (n)"


@dataclass
class MatchResult:
    """The decision for one patient; ``folder`` and ``repeats`` are set only when ``status == "matched"``."""

    status: MatchStatus
    folder: ImageFolder | None = None  # the study's first export
    repeats: list[ImageFolder] = field(default_factory=list)  # other exports of the same study
    score: float = 0.0  # name score of the match (of the best candidate otherwise)
    candidates: list[tuple[str, float]] = field(default_factory=list)  # (folder, score), best first
    reason: str = ""


def _parse_folder(folder: str, path: Path | None) -> ImageFolder | str:
    """The folder, or why its name fits no pattern."""
    match = FOLDER_PATTERN.fullmatch(folder)
    if match is None:
        return f"does not fit {FOLDER_FORMAT}"
    birth_year = int(match["year"]) if match["year"] else None
    low, high = BIRTH_YEAR_RANGE
    if birth_year is not None and not low <= birth_year <= high:
        return f"birth year {birth_year} outside {low}..{high}"
    stamp = match["date"]
    try:
        exam = date(int(stamp[:4]), int(stamp[4:6]), int(stamp[6:]))
    except ValueError:
        return f"exam date {stamp} is not a valid YYYYMMDD date"
    copy = int(match["copy"]) if match["copy"] else 1
    if copy < 1:
        return f"repeat counter ({copy}) must be >= 1"
    name = match["name"].replace("_", " ")
    return ImageFolder(
        path=path or Path(folder), folder=folder, name=name, birth_year=birth_year, exam_date=exam, copy=copy
    )


def parse_folder_name(folder: str, path: Path | None = None) -> ImageFolder | None:
    """``"NGUYEN_VAN_SON_1962_20250718 (2)"`` -> its name, birth year, exam date and copy; ``None`` if it fits
    no pattern (see :data:`FOLDER_PATTERN`; birth year 1900..2030, a valid exam date). ``path`` defaults to
    ``Path(folder)``."""
    parsed = _parse_folder(folder, path)
    return parsed if isinstance(parsed, ImageFolder) else None


def _expand(groups: np.ndarray, ptr: np.ndarray, members: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every member of each ``groups[i]`` (CSR ``ptr``/``members``) as ``(i, member)`` pairs, in order."""
    counts = ptr[groups + 1] - ptr[groups]
    owner = np.repeat(np.arange(len(groups)), counts)
    offsets = np.arange(len(owner)) - np.repeat(np.cumsum(counts) - counts, counts)
    return owner, members[np.repeat(ptr[groups], counts) + offsets]


def _csr(keys: np.ndarray, n_groups: int) -> tuple[np.ndarray, np.ndarray]:
    """Group the indices of ``keys`` by key: ``members[ptr[k]:ptr[k + 1]]`` are the indices with key ``k``."""
    members = np.argsort(keys, kind="stable")
    ptr = np.zeros(n_groups + 1, dtype=np.int64)
    np.cumsum(np.bincount(keys, minlength=n_groups), out=ptr[1:])
    return ptr, members


def _first_per_row(rows: np.ndarray, positions: np.ndarray, n: int) -> np.ndarray:
    """Per row ``0..n-1``, the first of ``positions`` whose row (``rows``, sorted) it is; -1 where none."""
    first = np.full(n, -1, dtype=np.int64)
    head = np.ones(len(rows), dtype=bool)
    head[1:] = rows[1:] != rows[:-1]
    first[rows[head]] = positions[head]
    return first


def _row_bounds(rows: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Start and end of each row's run in ``rows`` (sorted)."""
    return np.searchsorted(rows, np.arange(n), side="left"), np.searchsorted(rows, np.arange(n), side="right")


class PatientMatcher:
    """Matches patients to image folders (the rules are in the module docstring).

    ``image_path``: the folder holding one sub-folder per exported study; or ``folders``: the folder names
    themselves (joined to ``image_path`` when both are given). Folders whose name fits no pattern are listed in
    :attr:`rejected_folders` with the reason.

    ``exam_date_tolerance_days`` (off by default): when set, a known exam date also excludes every folder whose
    exam date is further than this from it, even when no candidate has the exact date (rule 3 keeps them
    otherwise). Use it when reports may arrive before their images: a report without a folder then finds no
    namesake's study instead of an exact-name match.
    """

    def __init__(
        self,
        image_path: Path | None = None,
        threshold: float = 85,
        folders: Sequence[str] | None = None,
        *,
        exam_date_tolerance_days: int | None = None,
    ) -> None:
        if not 0 < threshold <= 100:
            raise ConfigError("PatientMatcher", f"threshold must be in (0, 100], got {threshold}")
        if exam_date_tolerance_days is not None and exam_date_tolerance_days < 0:
            raise ConfigError(
                "PatientMatcher", f"exam_date_tolerance_days must be >= 0, got {exam_date_tolerance_days}"
            )
        self.exam_date_tolerance_days = exam_date_tolerance_days
        if folders is None:
            if image_path is None:
                raise ConfigError("PatientMatcher", "give image_path or folders")
            if not image_path.is_dir():
                raise InputPathError(image_path, "image folder does not exist")
            folders = sorted(p.name for p in image_path.iterdir() if p.is_dir())
        self.image_path = image_path
        self.threshold = float(threshold)
        self.folders: list[ImageFolder] = []
        self.rejected_folders: list[tuple[str, str]] = []
        for name in dict.fromkeys(folders):  # unique, in order
            parsed = _parse_folder(name, image_path / name if image_path is not None else None)
            if isinstance(parsed, ImageFolder):
                self.folders.append(parsed)
            else:
                self.rejected_folders.append((name, parsed))

        by_study: dict[tuple[str, int | None, date], list[ImageFolder]] = {}
        for folder in self.folders:
            by_study.setdefault((folder.name, folder.birth_year, folder.exam_date), []).append(folder)
        #: One tuple of exports per study, first copy first.
        self.studies: list[tuple[ImageFolder, ...]] = [
            tuple(sorted(exports, key=lambda f: (f.copy, f.folder)))
            for _, exports in sorted(
                by_study.items(), key=lambda item: (item[0][0], item[0][1] or 0, item[0][2])
            )
        ]
        normalized = [normalize_text(study[0].name) for study in self.studies]
        self._names: list[str] = list(dict.fromkeys(normalized))  # distinct normalized names: cdist columns
        name_index = {name: i for i, name in enumerate(self._names)}
        study_name = np.array([name_index[name] for name in normalized], dtype=np.int64)
        self._name_ptr, self._name_studies = _csr(study_name, len(self._names))
        self._study_year = np.array([s[0].birth_year or 0 for s in self.studies], dtype=np.int64)
        self._study_exam = np.array([s[0].exam_date.toordinal() for s in self.studies], dtype=np.int64)
        self._study_folder = [s[0].folder for s in self.studies]

    def match(
        self,
        name: str,
        birthday: date | None = None,
        exam_date: date | None = None,
        *,
        birth_year: int | None = None,
    ) -> MatchResult:
        """The decision for one patient (see :meth:`match_many`)."""
        return self.match_many([name], [birthday], [exam_date], birth_years=[birth_year])[0]

    def match_by_name(self, name: str, exam_date: date | None = None) -> MatchResult:
        """The decision for a patient known by name (and exam date) only, as a patient-named PDF gives them."""
        return self.match_many([name], None, [exam_date])[0]

    def _score_pairs(
        self, queries: list[str]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Every (query, name) pair scoring ``>= threshold``, and each query's closest name and its score."""
        n_names = len(self._names)
        closest = np.full(len(queries), -1, dtype=np.int64)
        closest_score = np.zeros(len(queries), dtype=np.float32)
        pair_q: list[np.ndarray] = []
        pair_name: list[np.ndarray] = []
        pair_score: list[np.ndarray] = []
        step = max(1, _BLOCK_CELLS // max(n_names, 1))
        for start in range(0, len(queries) if n_names else 0, step):
            block = process.cdist(
                queries[start : start + step], self._names, scorer=fuzz.ratio, dtype=np.float32, workers=-1
            )
            best = block.argmax(axis=1)
            closest[start : start + len(block)] = best
            closest_score[start : start + len(block)] = block[np.arange(len(block)), best]
            q, col = np.nonzero(block >= self.threshold)
            pair_q.append(q + start)
            pair_name.append(col)
            pair_score.append(block[q, col])
        if not pair_q:
            empty = np.zeros(0, dtype=np.int64)
            return empty, empty, np.zeros(0, dtype=np.float32), closest, closest_score
        return (
            np.concatenate(pair_q),
            np.concatenate(pair_name),
            np.concatenate(pair_score),
            closest,
            closest_score,
        )

    def match_many(
        self,
        names: Sequence[str],
        birthdays: Sequence[date | None] | None = None,
        exam_dates: Sequence[date | None] | None = None,
        *,
        birth_years: Sequence[int | None] | None = None,
    ) -> list[MatchResult]:
        """One decision per name, in order; ``birthdays``/``exam_dates`` (same length, ``None`` = unknown)
        exclude and confirm candidates as the module docstring's rules say. ``birth_years`` stand in for the
        birthdays that are unknown (a report that gives the year only); a known birthday's own year wins."""
        n = len(names)
        birthdays = [None] * n if birthdays is None else birthdays
        exam_dates = [None] * n if exam_dates is None else exam_dates
        birth_years = [None] * n if birth_years is None else birth_years
        if len(birthdays) != n or len(exam_dates) != n or len(birth_years) != n:
            raise ValueError(
                f"{n} names but {len(birthdays)} birthdays, {len(birth_years)} birth years and "
                f"{len(exam_dates)} exam dates"
            )
        if n == 0:
            return []
        query_year = np.array(
            [b.year if b else (y or 0) for b, y in zip(birthdays, birth_years, strict=True)], dtype=np.int64
        )
        query_exam = np.array([d.toordinal() if d else 0 for d in exam_dates], dtype=np.int64)

        # Score each distinct query once against each distinct folder name, keep the pairs >= threshold.
        index: dict[str, int] = {}
        query_of_row = np.array(
            [index.setdefault(normalize_text(name), len(index)) for name in names], dtype=np.int64
        )
        queries = list(index)
        pair_q, pair_name, pair_score, closest_name, closest_score = self._score_pairs(queries)
        # (distinct query, name) -> (row, name) -> (row, study)
        q_ptr, q_rows = _csr(query_of_row, len(index))
        by_row, row = _expand(pair_q, q_ptr, q_rows)
        by_study, study = _expand(pair_name[by_row], self._name_ptr, self._name_studies)
        row, score = row[by_study], pair_score[by_row[by_study]]
        order = np.lexsort((study, -score, row))  # by row, best score first
        row, study, score = row[order], study[order], score[order]

        # Rule 3: birth years exclude, then exam dates exclude when one candidate has the exact date.
        birth, exam = query_year[row], query_exam[row]
        year_match = (birth > 0) & (self._study_year[study] == birth)
        year_clash = (birth > 0) & (self._study_year[study] > 0) & ~year_match
        exam_match = (exam > 0) & (self._study_exam[study] == exam)
        if self.exam_date_tolerance_days is None:
            exam_clash = np.zeros(len(row), dtype=bool)
        else:
            exam_clash = (exam > 0) & (np.abs(self._study_exam[study] - exam) > self.exam_date_tolerance_days)
        has_exam = np.zeros(n, dtype=bool)
        has_exam[row[exam_match & ~year_clash]] = True
        keep = ~year_clash & ~exam_clash & (exam_match | ~has_exam[row])
        raw_row, raw_study, raw_score, raw_year_clash = row, study, score, year_clash
        row, study, score = row[keep], study[keep], score[keep]
        year_match, exam_match = year_match[keep], exam_match[keep]

        # Rule 4: non-exact names need a confirming date. Rule 5: rivals of the best accepted candidate.
        accepted = (score >= 100) | year_match | exam_match
        accepted_at = np.flatnonzero(accepted)
        first_accepted = _first_per_row(row[accepted_at], accepted_at, n)  # the best: rows run best first
        has_best = first_accepted >= 0
        best = np.full(n, np.inf)
        best[has_best] = score[first_accepted[has_best]]
        n_rivals = np.bincount(row[score >= best[row] - TIE_MARGIN], minlength=n)

        # One decision code per row, then the pairs each result lists (gathered at once, a few per row).
        starts, ends = _row_bounds(row, n)
        raw_starts, raw_ends = _row_bounds(raw_row, n)
        kept_n, raw_n = ends - starts, raw_ends - raw_starts
        code = np.full(n, _MATCHED, dtype=np.int8)
        code[n_rivals >= 2] = _TIE
        code[~has_best] = _UNCONFIRMED
        code[(kept_n == 0) & (raw_n > 0)] = _EXCLUDED
        code[(kept_n == 0) & (raw_n == 0)] = _NONE
        from_raw = code == _EXCLUDED
        length = np.minimum(kept_n, TOP_CANDIDATES)
        length[code == _TIE] = n_rivals[code == _TIE]
        length[from_raw] = np.minimum(raw_n, TOP_CANDIDATES)[from_raw]
        begin = np.where(from_raw, raw_starts + len(row), starts)
        offsets = np.arange(int(length.sum())) - np.repeat(np.cumsum(length) - length, length)
        listed = np.repeat(begin, length) + offsets
        all_study, all_score = np.concatenate([study, raw_study]), np.concatenate([score, raw_score])
        listed_study = all_study[listed].tolist()
        listed_score = all_score[listed].astype(np.float64)
        listed_rounded = np.round(listed_score, 2).tolist()
        listed_score = listed_score.tolist()
        ptr = np.concatenate([[0], np.cumsum(length)]).tolist()
        b = first_accepted[has_best]
        best_study = np.zeros(n, dtype=np.int64)
        best_study[has_best] = study[b]
        best_year, best_exam, raw_by_year = (np.zeros(n, dtype=bool) for _ in range(3))
        best_year[has_best], best_exam[has_best] = year_match[b], exam_match[b]
        raw_by_year[from_raw] = raw_year_clash[raw_starts[from_raw]]
        q_closest = closest_name[query_of_row].tolist()
        q_closest_score = closest_score[query_of_row].astype(np.float64).tolist()
        codes, rivals_n = code.tolist(), n_rivals.tolist()
        best_study, best_year, best_exam = best_study.tolist(), best_year.tolist(), best_exam.tolist()

        folders = self._study_folder
        results: list[MatchResult] = []
        for i in range(n):
            lo, hi = ptr[i], ptr[i + 1]
            listed_i = [
                (folders[k], v) for k, v in zip(listed_study[lo:hi], listed_rounded[lo:hi], strict=True)
            ]
            what = codes[i]
            if what == _MATCHED:
                chosen = self.studies[best_study[i]]
                top = listed_score[lo]
                confirmed = [
                    label
                    for label, flag in (("birth year", best_year[i]), ("exam date", best_exam[i]))
                    if flag
                ]
                how = "exact name" if top >= 100 else f"name score {top:.1f}"
                results.append(
                    MatchResult(
                        "matched",
                        folder=chosen[0],
                        repeats=list(chosen[1:]),
                        score=top,
                        candidates=listed_i,
                        reason=how + (", confirmed by " + " and ".join(confirmed) if confirmed else ""),
                    )
                )
            elif what == _TIE:
                best_score = listed_score[lo]
                results.append(
                    MatchResult(
                        "ambiguous",
                        score=best_score,
                        candidates=listed_i,
                        reason=f"{rivals_n[i]} folders score within {TIE_MARGIN:g} of {best_score:.1f} and no date "
                        "separates them",
                    )
                )
            elif what == _UNCONFIRMED:
                results.append(
                    MatchResult(
                        "no_match",
                        score=listed_score[lo],
                        candidates=listed_i,
                        reason=f"closest folder {listed_i[0][0]} ({listed_score[lo]:.1f}) differs and nothing confirms it",
                    )
                )
            elif what == _EXCLUDED:
                results.append(
                    MatchResult(
                        "no_match",
                        score=listed_score[lo],
                        candidates=listed_i,
                        reason=f"{int(raw_n[i])} folder(s) score >= {self.threshold:g} but none fits: the closest, "
                        f"{listed_i[0][0]} ({listed_score[lo]:.1f}), has another "
                        + ("birth year" if raw_by_year[i] else "exam date"),
                    )
                )
            elif not queries[query_of_row[i]]:
                results.append(MatchResult("no_match", reason="no name to match"))
            elif q_closest[i] < 0:
                results.append(MatchResult("no_match", reason="no image folders to match against"))
            else:
                near = folders[int(self._name_studies[self._name_ptr[q_closest[i]]])]
                near_score = q_closest_score[i]
                results.append(
                    MatchResult(
                        "no_match",
                        score=near_score,
                        candidates=[(near, round(near_score, 2))],
                        reason=f"no folder name scores >= {self.threshold:g} (closest {near} ({near_score:.1f}))",
                    )
                )
        return results
