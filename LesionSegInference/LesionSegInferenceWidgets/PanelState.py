"""The Inference panel's widget helpers: restoring the widgets from the scene's parameter node, the device
list (torch imported only once the dependencies are ready), a channel's volume selector, and errors shown as one
sentence.

The values are read and written by ``InferenceLogic.restore_state`` / ``save_state`` (``LesionSegInferenceLib.
SceneState``); this file only puts them into the widgets, with the panel's ``restoring`` flag set so that filling
the widgets neither writes the half-restored values back nor re-thresholds the result.
"""

import logging
import os

import slicer
from slicer.i18n import tr as _

from LesionSegInferenceLib import DEVICE_LABELS, available_device_choices, detect_devices


def restorePanel(widget):
    """Fill ``widget`` (a LesionSegInferenceWidget) from the scene's parameter node and reconnect its result."""
    ui = widget.ui
    widget.restoring = True
    try:
        parameters = widget.logic.restore_state()
        if parameters.bundle_path and os.path.isfile(parameters.bundle_path):
            widget.selectBundle(parameters.bundle_path)
        for channel, volume in parameters.input_volumes.items():
            if channel in widget.channelSelectors:
                widget.channelSelectors[channel].setCurrentNode(volume)
        selectData(ui.deviceComboBox, parameters.device)
        selectData(ui.sideComboBox, parameters.side)
        ui.ttaCheckBox.checked = parameters.tta
        ui.fillHolesCheckBox.checked = parameters.fill_holes
        entry = widget.currentEntry()
        threshold = parameters.threshold if parameters.threshold is not None else (
            entry.threshold if entry is not None and entry.ok else None)
        if threshold is not None:
            wasBlocked = ui.thresholdSliderWidget.blockSignals(True)
            ui.thresholdSliderWidget.value = threshold
            ui.thresholdSliderWidget.blockSignals(wasBlocked)
        ui.minLesionSpinBox.value = parameters.min_lesion_mm3
        ui.outputSegmentationSelector.setCurrentNode(parameters.output_segmentation)
    except Exception as error:
        widget.showException(_("The LesionSeg settings of this scene could not be restored"), error)
    finally:
        widget.restoring = False
    result = widget.logic.result
    ui.showProbabilityCheckBox.enabled = result is not None
    ui.showBrainMaskCheckBox.enabled = result is not None and result.brain_node is not None
    widget.showResult()
    widget.updateApplyButton()


def volumeSelector(channel, node, onChanged):
    """A scalar volume selector for one input channel of the bundle, showing ``node``."""
    selector = slicer.qMRMLNodeComboBox()
    selector.nodeTypes = ["vtkMRMLScalarVolumeNode"]
    selector.showChildNodeTypes = False
    selector.noneEnabled = True
    selector.addEnabled = False
    selector.removeEnabled = False
    selector.setMRMLScene(slicer.mrmlScene)
    selector.setCurrentNode(node)
    selector.toolTip = _("The {channel} volume.").format(channel=channel.upper())
    selector.connect("currentNodeChanged(vtkMRMLNode*)", onChanged)
    return selector


def fillDeviceList(widget):
    """Device choices. torch is imported (and CUDA queried) only once the dependencies are ready (first
    Apply): until then the choices are listed without detection, and validation does not check them."""
    current = widget.ui.deviceComboBox.currentData
    if not widget.devicesDetected:
        widget.ui.deviceComboBox.clear()
        for choice in DEVICE_LABELS:
            widget.ui.deviceComboBox.addItem(DEVICE_LABELS[choice], choice)
        selectData(widget.ui.deviceComboBox, current or "auto")
        return
    try:
        options = detect_devices()
    except Exception as error:  # a broken CUDA set-up (or torch): let the user still choose the CPU
        logging.warning("LesionSeg: device detection failed: %s", error)
        options = []
    widget.logic.available_devices = available_device_choices(options) if options else ("auto", "cpu")
    widget.ui.deviceComboBox.clear()
    for option in options or []:
        widget.ui.deviceComboBox.addItem(option.label, option.choice)
    if not options:
        for choice in ("auto", "cpu"):
            widget.ui.deviceComboBox.addItem(DEVICE_LABELS[choice], choice)
    selectData(widget.ui.deviceComboBox, current or "auto")


def selectData(comboBox, data):
    """Select the item holding ``data`` (signals blocked: restoring is not a user's change)."""
    index = comboBox.findData(data)
    if index >= 0 and index != comboBox.currentIndex:
        wasBlocked = comboBox.blockSignals(True)
        comboBox.currentIndex = index
        comboBox.blockSignals(wasBlocked)


def showException(widget, what, error):
    """An error as one sentence in a dialog (the traceback in its details) and on the status line."""
    import traceback

    from lesionseg.errors import LesionSegError

    text = str(error).strip() or type(error).__name__
    if isinstance(error, LesionSegError):
        message = text[:1].upper() + text[1:]
    else:
        message = _("{what}: {kind}: {text}").format(what=what, kind=type(error).__name__, text=text)
    widget.showError(message, traceback.format_exc())
