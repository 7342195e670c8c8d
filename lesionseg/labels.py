"""The lesion label: its name, value, colour and terminology, shared by files, Slicer and the report.

The terminology entry follows Slicer's segment tag format
``context~category~type~typeModifier~anatomicContext~anatomicRegion~regionModifier`` with each coded
term written ``scheme^value^meaning``. SNOMED CT: category 49755003 "Morphologically Altered Structure",
type 55641003 "Infarct". The same entry is in ``Resources/LesionSeg.term.json`` for Slicer's
terminology selector.
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


def _coded(term: tuple[str, str, str] | None) -> str:
    return "^".join(term) if term else "^^"


def terminology_entry() -> str:
    """The segment's terminology entry string as Slicer stores it in a segment tag."""
    return "~".join([TERMINOLOGY_CONTEXT, _coded(CATEGORY_CODE), _coded(TYPE_CODE), _coded(None),
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
