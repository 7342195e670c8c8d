"""Qt-side pieces of LesionSegInference beyond the module file: the Sample Data entry, restoring the panel from
the scene's parameter node, and the "Segment a folder" section. They wire widgets to ``LesionSegInferenceLib``
and hold no logic.
"""
