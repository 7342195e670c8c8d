"""The "Stroke lesion FLAIR (synthetic)" entry of Slicer's Sample Data module (registered at start-up).

The case is made on first use by ``LesionSegInferenceLib.SampleData`` (``lesionseg.synth``; nothing is
downloaded) in Slicer's cache folder, then loaded as a volume whose name the Inference panel matches to the FLAIR
channel.
"""

import os

import slicer
from slicer.i18n import tr as _

MODULE_FOLDER = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def registerSampleData():
    """The "Stroke lesion FLAIR (synthetic)" entry of the Sample Data module, made on first use (no download)."""
    import SampleData

    from LesionSegInferenceLib.SampleData import SAMPLE_CATEGORY, SAMPLE_NAME, SAMPLE_NODE_NAME

    SampleData.SampleDataLogic.registerCustomSampleDataSource(
        category=SAMPLE_CATEGORY, sampleName=SAMPLE_NAME, nodeNames=[SAMPLE_NODE_NAME],
        thumbnailFileName=os.path.join(MODULE_FOLDER, "Resources", "Icons", "LesionSegInference.png"),
        customDownloader=loadSampleData)


def loadSampleData(source=None):
    """Make the synthetic case on first use (in Slicer's cache folder) and load it; the error is shown if not."""
    from LesionSegInferenceLib.SampleData import SAMPLE_NODE_NAME, ensure_sample

    try:
        with slicer.util.WaitCursor():
            files = ensure_sample(slicer.mrmlScene.GetCacheManager().GetRemoteCacheDirectory())
    except Exception as error:
        slicer.util.errorDisplay(_("The synthetic stroke case could not be made: {error}").format(error=error),
                                 windowTitle=_("LesionSeg sample data"))
        return None
    return slicer.util.loadVolume(str(files.flair), {"name": SAMPLE_NODE_NAME})
