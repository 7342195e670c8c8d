"""The refinement tools: each takes SimpleITK images (and parameters) and returns a new 0/1 mask on the
same grid; none writes anything (see :mod:`lesionseg.refine.session` for tools applied as revisions).

``TOOLS``: the command-line names and their functions; ``call_tool`` runs one by name.
"""

from lesionseg.refine.tools.cleanup import clean_up
from lesionseg.refine.tools.fill_between import fill_between_slices
from lesionseg.refine.tools.grow import grow_from_seeds
from lesionseg.refine.tools.intensity import refine_intensity
from lesionseg.refine.tools.transfer import carry_mask
from lesionseg.refine.tools.dispatch import MASK_ONLY_TOOLS, TOOLS, call_tool

__all__ = ["MASK_ONLY_TOOLS", "TOOLS", "call_tool", "carry_mask", "clean_up", "fill_between_slices", "grow_from_seeds", "refine_intensity"]
