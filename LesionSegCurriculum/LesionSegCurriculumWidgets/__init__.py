"""Qt-side pieces of LesionSegCurriculum beyond the module file: the refinement section of the panel and the
"LesionSeg refine" Segment Editor effect. They wire widgets to ``LesionSegCurriculumLib`` and hold no logic.

The effect class is exported here, as Slicer's effect template does: the editor registers an effect from its
file with ``qSlicerSegmentEditorScriptedEffect.setPythonSource``, which takes the file's folder name as a module
name and looks the class up in ``sys.modules[<folder name>]``. Once this package is imported (the module file
imports it), that lookup finds the class here; without the export the editor would load the effect file as
the package itself and replace it in ``sys.modules``.
"""

from .SegmentEditorEffect import *  # noqa: F401,F403 - the class setPythonSource looks up
