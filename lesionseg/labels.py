"""The lesion labels: name, value, colour and terminology, shared by files, Slicer and the report.

The terminology entry follows Slicer's segment tag format
``context~category~type~typeModifier~anatomicContext~anatomicRegion~regionModifier`` with each coded
term written ``scheme^value^meaning``. SNOMED CT: category 49755003 "Morphologically Altered Structure",
type 55641003 "Infarct" for the stroke lesion and the ischaemic core (tissue that is already infarcted),
52674009 "Ischemia" for the penumbra (hypoperfused tissue still at risk). The same entries are in
``Resources/LesionSeg.term.json`` for Slicer's terminology selector.

Perfusion models have two lesion classes, :data:`ISCHAEMIC_CORE` (red) and :data:`PENUMBRA` (yellow);
:func:`known_label` gives a class read from a dataset's label table its terminology when its name is one
of these.
"""

from __future__ import annotations

from dataclasses import dataclass

STROKE_LESION_NAME = "Stroke lesion"
STROKE_LESION_LABEL_VALUE = 1
#: RGB in 0..1
STROKE_LESION_COLOR: tuple[float, float, float] = (0.85, 0.2, 0.18)
TERMINOLOGY_CONTEXT = "Segmentation category and type - LesionSeg"
ANATOMIC_CONTEXT = "Anatomic codes - DICOM master list"
CATEGORY_CODE = ("SCT", "49755003", "Morphologically Altered Structure")
TYPE_CODE = ("SCT", "55641003", "Infarct")
ISCHEMIA_TYPE_CODE = ("SCT", "52674009", "Ischemia")


def _coded(term: tuple[str, str, str] | None) -> str:
    return "^".join(term) if term else "^^"


def terminology_entry(type_code: tuple[str, str, str] = TYPE_CODE) -> str:
    """A segment's terminology entry string as Slicer stores it in a segment tag (default: the infarct)."""
    return "~".join([TERMINOLOGY_CONTEXT, _coded(CATEGORY_CODE), _coded(type_code), _coded(None),
                     ANATOMIC_CONTEXT, _coded(None), _coded(None)])


@dataclass(frozen=True)
class SegmentLabel:
    """A named segment of a labelmap: label value, display name and RGB colour (0..1)."""

    name: str
    value: int
    color: tuple[float, float, float]
    terminology: str | None = None


STROKE_LESION = SegmentLabel(STROKE_LESION_NAME, STROKE_LESION_LABEL_VALUE, STROKE_LESION_COLOR,
                             terminology_entry())

ISCHAEMIC_CORE = SegmentLabel("Ischaemic core", 1, (0.85, 0.2, 0.18), terminology_entry(TYPE_CODE))
PENUMBRA = SegmentLabel("Penumbra", 2, (0.95, 0.85, 0.2), terminology_entry(ISCHEMIA_TYPE_CODE))

#: lower-case names (as label tables spell them) of the classes whose terminology is known
_KNOWN_NAMES: dict[str, SegmentLabel] = {
    "stroke lesion": STROKE_LESION, "lesion": STROKE_LESION, "infarct": STROKE_LESION,
    "core": ISCHAEMIC_CORE, "ischaemic core": ISCHAEMIC_CORE, "ischemic core": ISCHAEMIC_CORE,
    "infarct core": ISCHAEMIC_CORE, "penumbra": PENUMBRA, "ischaemic penumbra": PENUMBRA,
    "ischemic penumbra": PENUMBRA,
}


def known_label(label: SegmentLabel) -> SegmentLabel:
    """``label`` with the terminology of the known class its name names (case-insensitive), else as it is.

    The name, value and colour stay the dataset's; only a missing terminology is filled in.
    """
    known = _KNOWN_NAMES.get(label.name.strip().lower())
    if known is None or label.terminology:
        return label
    return SegmentLabel(label.name, label.value, label.color, known.terminology)
