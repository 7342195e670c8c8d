"""Qt-side pieces of LesionSegCurriculum beyond the module file: the refinement section of the panel and the
"LesionSeg refine" Segment Editor effect. They wire widgets to ``LesionSegCurriculumLib`` and hold no logic.
"""
