"""Synthetic Vietnamese patients of the Phenikaa hospital export, with look-alikes that make matching hard.

Everything is drawn from a ``numpy.random.Generator``: the same generator state gives the same list. Names
are Vietnamese with diacritics (surname, 0-2 middle names, given name), consistent with the patient's sex.
When ``n >= 6`` the list always holds three kinds of look-alike pairs (see :func:`lookalike_pairs`).
"""

from __future__ import annotations

import itertools
import unicodedata
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
from rapidfuzz import process
from rapidfuzz.distance import Levenshtein

from spine_lib.errors import ConfigError

__all__ = ["SyntheticPatient", "ascii_name", "lookalike_pairs", "make_patients"]

MALE = "Nam"
FEMALE = "Nữ"

SAME_GIVEN_NAME = "same_given_name"
ONE_LETTER_APART = "one_letter_apart"
SAME_NAME_OTHER_BIRTHDAY = "same_name_other_birthday"
#: Look-alike kinds, most confusing first (a pair is reported under the first kind it fits).
LOOKALIKE_KINDS: tuple[str, ...] = (SAME_NAME_OTHER_BIRTHDAY, ONE_LETTER_APART, SAME_GIVEN_NAME)


def _nfc(*names: str) -> tuple[str, ...]:
    return tuple(unicodedata.normalize("NFC", name) for name in names)


#: Common surnames and their approximate share of the population (weights, renormalised when drawing).
SURNAMES: tuple[str, ...] = _nfc(
    "Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Huỳnh", "Phan", "Vũ", "Võ", "Đặng",
    "Bùi", "Đỗ", "Hồ", "Ngô", "Dương", "Lý", "Đinh", "Trịnh", "Đoàn", "Lương",
)  # fmt: skip
SURNAME_WEIGHTS: tuple[float, ...] = (
    38.0, 11.0, 9.5, 7.0, 4.0, 2.0, 4.5, 2.5, 1.5, 2.1,
    2.0, 1.4, 1.3, 1.3, 1.0, 0.5, 0.8, 0.7, 0.6, 0.6,
)  # fmt: skip

MIDDLE_NAMES: dict[str, tuple[str, ...]] = {
    MALE: _nfc("Văn", "Đức", "Hữu", "Minh", "Quang", "Công", "Thành", "Xuân", "Đình", "Mạnh", "Tiến", "Trọng"),
    FEMALE: _nfc("Thị", "Thu", "Ngọc", "Thanh", "Hồng", "Phương", "Bích", "Kim", "Thùy", "Diệu", "Mỹ"),
}
#: The first middle name most often given to each sex ("Văn" for men, "Thị" for women).
COMMON_MIDDLE_NAME: dict[str, str] = dict(zip((MALE, FEMALE), _nfc("Văn", "Thị"), strict=True))

GIVEN_NAMES: dict[str, tuple[str, ...]] = {
    MALE: _nfc(
        "Sơn", "Hùng", "Dũng", "Tuấn", "Minh", "Hải", "Thắng", "Cường", "Đức", "Quân", "Long", "Nam",
        "Phúc", "Hiếu", "Tâm", "Khánh", "Việt", "Trung", "Huy", "Bình", "Toàn", "Lộc", "Thịnh", "Dương",
    ),
    FEMALE: _nfc(
        "Lan", "Hương", "Hoa", "Mai", "Thảo", "Linh", "Trang", "Ánh", "Hằng", "Nga", "Yến", "Huyền",
        "Thủy", "Nhung", "Hạnh", "Phượng", "Dung", "Quỳnh", "Vân", "Giang", "Tuyết", "Ngọc",
    ),
}

def _pair(a: str, b: str) -> tuple[str, str]:
    return unicodedata.normalize("NFC", a), unicodedata.normalize("NFC", b)


#: Real given names whose ASCII forms differ by exactly one letter (inserted, deleted or substituted).
ONE_LETTER_GIVEN_NAMES: dict[str, tuple[tuple[str, str], ...]] = {
    MALE: (_pair("Quân", "Quang"), _pair("Hoàn", "Hoàng"), _pair("Tâm", "Tân"), _pair("Lộc", "Lực")),
    FEMALE: (_pair("Lan", "Loan"), _pair("Hằng", "Hạnh"), _pair("Hoa", "Hoài")),
}

BIRTHDAY_RANGE: tuple[date, date] = (date(1940, 1, 1), date(2000, 12, 31))
EXAM_DATE_RANGE: tuple[date, date] = (date(2024, 1, 1), date(2025, 12, 31))


@dataclass(frozen=True)
class SyntheticPatient:
    """One patient of the hospital export, as the truth that reports, folders and tables are built from."""

    patient_id: str  # 9 digits: exam year (2 digits) + a 7-digit running number, e.g. "250010139"
    full_name: str  # Vietnamese with diacritics, NFC, e.g. "Nguyễn Văn Sơn"
    birthday: date
    sex: str  # "Nam" or "Nữ"
    exam_date: date  # the MRI exam (2024-2025)

    @property
    def surname(self) -> str:
        """First word of the full name."""
        return self.full_name.split()[0]

    @property
    def given_name(self) -> str:
        """Last word of the full name."""
        return self.full_name.split()[-1]


def ascii_name(full_name: str) -> str:
    """``"Nguyễn Văn Sơn"`` -> ``"NGUYEN_VAN_SON"``: diacritics stripped, đ/Đ -> D, upper case, spaces -> ``_``."""
    text = full_name.replace("đ", "d").replace("Đ", "D")
    decomposed = unicodedata.normalize("NFD", text)
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return "_".join(stripped.upper().split())


def _pick(rng: np.random.Generator, options: tuple[str, ...]) -> str:
    return options[int(rng.integers(len(options)))]


def _random_date(rng: np.random.Generator, bounds: tuple[date, date]) -> date:
    start, end = bounds
    return start + timedelta(days=int(rng.integers((end - start).days + 1)))


def _random_name(rng: np.random.Generator, sex: str, *, surname: str | None = None, given: str | None = None) -> str:
    """Surname, 0-2 middle names (none equal to the given name) and a given name matching ``sex``."""
    weights = np.asarray(SURNAME_WEIGHTS) / sum(SURNAME_WEIGHTS)
    surname = surname or SURNAMES[int(rng.choice(len(SURNAMES), p=weights))]
    given = given or _pick(rng, GIVEN_NAMES[sex])
    n_middle = int(rng.choice(3, p=[0.05, 0.75, 0.20]))
    middles: list[str] = []
    if n_middle >= 1:
        middles.append(COMMON_MIDDLE_NAME[sex] if rng.random() < 0.6 else _pick(rng, MIDDLE_NAMES[sex]))
    while len(middles) < n_middle:
        candidate = _pick(rng, MIDDLE_NAMES[sex])
        if candidate not in middles:
            middles.append(candidate)
    middles = [m for m in middles if m != given]
    return " ".join([surname, *middles, given])


def _random_person(rng: np.random.Generator) -> tuple[str, str, date]:
    sex = MALE if rng.random() < 0.5 else FEMALE
    return _random_name(rng, sex), sex, _random_date(rng, BIRTHDAY_RANGE)


def _assign_ids(exam_dates: list[date], rng: np.random.Generator) -> list[str]:
    """Per exam year, a running number that increases with the exam date: ``YY`` + 7 digits, unique."""
    ids = [""] * len(exam_dates)
    counters: dict[int, int] = {}
    for index in sorted(range(len(exam_dates)), key=lambda i: (exam_dates[i], i)):
        year = exam_dates[index].year
        if year not in counters:
            counters[year] = int(rng.integers(1_000, 20_000))
        counters[year] += int(rng.integers(1, 40))
        ids[index] = f"{year % 100:02d}{counters[year]:07d}"
    return ids


def _lookalike_of(kind: str, base: tuple[str, str, date], rng: np.random.Generator) -> tuple[str, str, date]:
    """A person that looks like ``base`` (name, sex, birthday) in the way ``kind`` names."""
    name, sex, birthday = base
    if kind == SAME_NAME_OTHER_BIRTHDAY:
        other = birthday
        while other == birthday:
            other = _random_date(rng, BIRTHDAY_RANGE)
        return name, sex, other
    if kind == SAME_GIVEN_NAME:
        given = name.split()[-1]
        while True:
            candidate = _random_name(rng, sex, given=given)
            if candidate.split()[0] != name.split()[0] and Levenshtein.distance(
                ascii_name(candidate), ascii_name(name)
            ) >= 2:
                return candidate, sex, _random_date(rng, BIRTHDAY_RANGE)
    raise ValueError(kind)


def _one_letter_pair(rng: np.random.Generator) -> tuple[tuple[str, str, date], tuple[str, str, date]]:
    """Two people whose full names differ only in a given name that is one ASCII letter apart."""
    sex = MALE if rng.random() < 0.5 else FEMALE
    pairs = ONE_LETTER_GIVEN_NAMES[sex]
    first, second = pairs[int(rng.integers(len(pairs)))]
    name_a = _random_name(rng, sex, given=first)
    name_b = " ".join([*name_a.split()[:-1], second])
    return (name_a, sex, _random_date(rng, BIRTHDAY_RANGE)), (name_b, sex, _random_date(rng, BIRTHDAY_RANGE))


def make_patients(n: int, rng: np.random.Generator) -> list[SyntheticPatient]:
    """``n`` patients with unique 9-digit IDs; for ``n >= 6`` the three look-alike kinds are all present.

    Look-alike pairs occupy random slots of the list (as many of the three pairs as ``n // 2`` allows).
    """
    if n < 0:
        raise ConfigError("make_patients", f"the number of patients must be >= 0, got {n}")
    people = [_random_person(rng) for _ in range(n)]
    slots = [int(i) for i in rng.permutation(n)]
    for k in range(min(n // 2, 3)):
        a, b = slots[2 * k], slots[2 * k + 1]
        if k == 0:
            people[b] = _lookalike_of(SAME_NAME_OTHER_BIRTHDAY, people[a], rng)
        elif k == 1:
            people[a], people[b] = _one_letter_pair(rng)
        else:
            people[b] = _lookalike_of(SAME_GIVEN_NAME, people[a], rng)
    exam_dates = [_random_date(rng, EXAM_DATE_RANGE) for _ in range(n)]
    ids = _assign_ids(exam_dates, rng)
    return [
        SyntheticPatient(patient_id=pid, full_name=name, birthday=birthday, sex=sex, exam_date=exam)
        for pid, (name, sex, birthday), exam in zip(ids, people, exam_dates, strict=True)
    ]


def _pair_kind(a: SyntheticPatient, b: SyntheticPatient, ascii_a: str, ascii_b: str) -> str | None:
    if a.full_name == b.full_name:
        return SAME_NAME_OTHER_BIRTHDAY if a.birthday != b.birthday else None
    if Levenshtein.distance(ascii_a, ascii_b) == 1:
        return ONE_LETTER_APART
    if a.given_name == b.given_name and a.surname != b.surname:
        return SAME_GIVEN_NAME
    return None


def lookalike_pairs(patients: list[SyntheticPatient]) -> list[tuple[str, str, str]]:
    """Every pair of look-alike patients as ``(patient_id_a, patient_id_b, kind)``, computed from the data.

    Kinds, checked in this order (a pair is reported once, under the first that fits):
    ``same_name_other_birthday`` (identical full name, different birthday), ``one_letter_apart`` (ASCII names at
    Levenshtein distance 1), ``same_given_name`` (same given name, different surname). Pairs keep list order.
    """
    asciis = [ascii_name(p.full_name) for p in patients]
    candidates: set[tuple[int, int]] = set()
    for i, name in enumerate(asciis[:-1]):  # ASCII names at distance <= 1 (same name included)
        matches = process.extract(name, asciis[i + 1 :], scorer=Levenshtein.distance, score_cutoff=1, limit=None)
        candidates.update((i, i + 1 + j) for _, _, j in matches)
    by_given: dict[str, list[int]] = {}
    for i, patient in enumerate(patients):
        by_given.setdefault(patient.given_name, []).append(i)
    for members in by_given.values():
        candidates.update(itertools.combinations(members, 2))
    pairs: list[tuple[str, str, str]] = []
    for i, j in sorted(candidates):
        kind = _pair_kind(patients[i], patients[j], asciis[i], asciis[j])
        if kind is not None:
            pairs.append((patients[i].patient_id, patients[j].patient_id, kind))
    return pairs
