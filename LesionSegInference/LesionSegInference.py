"""LesionSegInference: segment the stroke lesion of loaded volumes with a LesionSeg model bundle.

This file only holds the module's metadata, the panel's wiring and the self-test; the logic is in
``LesionSegInferenceLib`` and the science in the ``lesionseg`` package.
"""

import logging
import os
import tempfile
import unittest

import qt
import slicer
from slicer.i18n import tr as _
from slicer.i18n import translate
from slicer.ScriptedLoadableModule import (
    ScriptedLoadableModule,
    ScriptedLoadableModuleTest,
    ScriptedLoadableModuleWidget,
)
from slicer.util import VTKObservationMixin

from LesionSegInferenceLib import (
    SIDE_CHOICES,
    SIDE_LABELS,
    TERMINOLOGY_FILE_NAME,
    BundleCatalog,
    InferenceLogic,
    InferenceParameters,
    channel_volume_names,
    display_rows,
    find_extension_resource,
)
from LesionSegInferenceLib.InstallLogic import slicer_install_logic
from LesionSegInferenceLib.SlicerLaunchers import default_launcher
from LesionSegInferenceLib.Texts import ACKNOWLEDGEMENT, DOCUMENTATION_URL, LESION_HEADERS, RETHRESHOLD_DELAY_MS
from LesionSegInferenceWidgets.DicomExportSection import DicomExportSection
from LesionSegInferenceWidgets.FolderSection import FolderSection
from LesionSegInferenceWidgets.PanelState import fillDeviceList, restorePanel, showException, volumeSelector
from LesionSegInferenceWidgets.SampleDataEntry import registerSampleData

MODULE_FOLDER = os.path.dirname(os.path.abspath(__file__))


class LesionSegInference(ScriptedLoadableModule):
    """Module metadata; registers the "Stroke lesion" terminology when Slicer has started."""

    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = _("LesionSeg Inference")
        self.parent.categories = [translate("qSlicerAbstractCoreModule", "Segmentation")]
        self.parent.dependencies = []
        self.parent.contributors = ["LesionSeg developers"]
        self.parent.helpText = _(
            "Segment the stroke lesion of brain MRI (FLAIR, DWI, ADC, T1) or CT volumes with a trained "
            "LesionSeg model bundle. The result is a segmentation with a \"Stroke lesion\" segment that "
            "overlays the input volume voxel for voxel, a probability map, the brain mask used and a table "
            "of lesions. Research use only, not for clinical decisions."
        )
        self.parent.helpText += f' See the <a href="{DOCUMENTATION_URL}">documentation</a>.'

        self.parent.acknowledgementText = _(ACKNOWLEDGEMENT)
        slicer.app.connect("startupCompleted()", self.registerTerminology)
        slicer.app.connect("startupCompleted()", registerSampleData)

    def registerTerminology(self):
        """Load the LesionSeg terminology so that the "Stroke lesion" entry appears in segment editors."""
        path = find_extension_resource(MODULE_FOLDER, TERMINOLOGY_FILE_NAME)
        if path is None:
            logging.warning("LesionSeg: %s was not found beside the module; reinstall the extension.",
                            TERMINOLOGY_FILE_NAME)
            return
        slicer.modules.terminologies.logic().LoadTerminologyFromFile(str(path))


class LesionSegInferenceWidget(ScriptedLoadableModuleWidget, VTKObservationMixin):
    """The panel: bundle chooser with model card, input volumes per channel, options, Apply/Cancel, results."""

    def __init__(self, parent=None):
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic = None
        self.entries = []
        self.channelSelectors = {}
        self.dependenciesReady = False
        self.rethresholdTimer = None
        self.restoring = False
        self.devicesDetected = False
        self.folderSection = None
        self.dicomExport = None

    # ---- set-up ---------------------------------------------------------------------------------------------
    def setup(self):
        ScriptedLoadableModuleWidget.setup(self)
        self.restoring = True  # until restoreFromScene: filling the widgets must not overwrite the scene's settings
        uiWidget = slicer.util.loadUI(self.resourcePath("UI/LesionSegInference.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)

        self.logic = InferenceLogic(slicer.mrmlScene, launcher=default_launcher(),
                                    catalog=BundleCatalog(qt.QSettings()), work_root=slicer.app.temporaryPath)
        self.fillDeviceList()
        for side in SIDE_CHOICES:
            self.ui.sideComboBox.addItem(SIDE_LABELS[side], side)
        self.ui.lesionTableWidget.setColumnCount(len(LESION_HEADERS))
        self.ui.lesionTableWidget.setHorizontalHeaderLabels([_(header) for _key, header in LESION_HEADERS])
        self.rethresholdTimer = qt.QTimer()
        self.rethresholdTimer.setSingleShot(True)
        self.rethresholdTimer.setInterval(RETHRESHOLD_DELAY_MS)
        self.rethresholdTimer.connect("timeout()", self.onRethreshold)

        self.ui.bundleFolderLineEdit.connect("currentPathChanged(QString)", self.onBundleFolderChanged)
        self.ui.bundleListWidget.connect("currentRowChanged(int)", self.onBundleSelected)
        self.ui.outputSegmentationSelector.connect("currentNodeChanged(vtkMRMLNode*)", self.updateApplyButton)
        for widget in (self.ui.deviceComboBox, self.ui.sideComboBox):
            widget.connect("currentIndexChanged(int)", self.updateApplyButton)
        self.ui.ttaCheckBox.connect("toggled(bool)", self.updateApplyButton)
        self.ui.thresholdSliderWidget.connect("valueChanged(double)", self.onPostprocessingChanged)
        self.ui.minLesionSpinBox.connect("valueChanged(double)", self.onPostprocessingChanged)
        self.ui.fillHolesCheckBox.connect("toggled(bool)", self.onPostprocessingChanged)
        self.ui.applyButton.connect("clicked(bool)", self.onApplyButton)
        self.ui.lesionTableWidget.connect("cellClicked(int,int)", self.onLesionClicked)
        self.ui.showProbabilityCheckBox.connect("toggled(bool)", self.onShowProbability)
        self.ui.showBrainMaskCheckBox.connect("toggled(bool)", self.onShowBrainMask)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.StartCloseEvent, self.onSceneStartClose)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.StartImportEvent, self.onSceneStartImport)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndImportEvent, self.onSceneEndImport)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.NodeAddedEvent, self.onNodeAdded)

        ok, message = self.logic.check_lesionseg()
        self.ui.packageStatusLabel.text = message
        self.ui.progressBar.setValue(0)
        self.ui.bundleFolderLineEdit.currentPath = self.logic.catalog.folder
        self.refreshBundles()
        self.folderSection = FolderSection(self)
        self.dicomExport = DicomExportSection(self)
        self.restoreFromScene()

    def cleanup(self):
        if self.logic is not None and self.logic.running:
            self.logic.cancel()
        if self.rethresholdTimer is not None:
            self.rethresholdTimer.stop()
        self.removeObservers()

    def fillDeviceList(self):
        fillDeviceList(self)

    # ---- bundles --------------------------------------------------------------------------------------------
    def onBundleFolderChanged(self, path):
        self.logic.catalog.folder = path
        if path and os.path.isdir(path):
            self.ui.bundleFolderLineEdit.addCurrentPathToHistory()
        self.refreshBundles()

    def refreshBundles(self):
        """List the folder's bundles and re-select the last chosen one."""
        self.entries = self.logic.catalog.entries()
        wasBlocked = self.ui.bundleListWidget.blockSignals(True)
        self.ui.bundleListWidget.clear()
        for entry in self.entries:
            self.ui.bundleListWidget.addItem(entry.label)
        self.ui.bundleListWidget.blockSignals(wasBlocked)
        paths = [str(entry.path) for entry in self.entries]
        last = self.logic.catalog.last_bundle
        self.ui.bundleListWidget.setCurrentRow(paths.index(last) if last in paths else (0 if paths else -1))
        if not paths:
            self.onBundleSelected(-1)

    def selectBundle(self, path):
        """Show a bundle's folder and choose the bundle (the curriculum panel offers its trained bundle)."""
        self.logic.catalog.last_bundle = str(path)
        self.ui.bundleFolderLineEdit.currentPath = os.path.dirname(str(path))
        self.refreshBundles()

    def currentEntry(self):
        row = self.ui.bundleListWidget.currentRow
        return self.entries[row] if 0 <= row < len(self.entries) else None

    def onBundleSelected(self, row):
        entry = self.currentEntry()
        if entry is None:
            self.ui.modelCardTextEdit.setPlainText(_("No model bundle in this folder; choose a folder holding .lsb files."))
            self.rebuildChannelSelectors(None)
            self.updateApplyButton()
            return
        self.logic.catalog.last_bundle = str(entry.path)
        self.ui.modelCardTextEdit.setPlainText(entry.card_text() if entry.ok else entry.error)
        if entry.ok and not self.restoring:
            # The next run's threshold; blocked, so that it never acts on the previous bundle's result.
            wasBlocked = self.ui.thresholdSliderWidget.blockSignals(True)
            self.ui.thresholdSliderWidget.value = entry.threshold
            self.ui.thresholdSliderWidget.blockSignals(wasBlocked)
        self.rebuildChannelSelectors(entry)
        self.updateApplyButton()

    def rebuildChannelSelectors(self, entry):
        """One volume selector per channel the bundle expects, pre-filled from the volumes' names."""
        layout = self.ui.channelsWidget.layout()
        while layout.rowCount() > 0:
            layout.removeRow(0)
        self.channelSelectors = {}
        if entry is None or not entry.ok:
            self.ui.channelsHintLabel.text = _("Choose a model bundle to see which volumes it needs.")
            return
        volumes = list(slicer.util.getNodesByClass("vtkMRMLScalarVolumeNode"))
        volumes = [volume for volume in volumes if not volume.IsA("vtkMRMLLabelMapVolumeNode")]
        guesses = channel_volume_names(entry, volumes)
        for channel in entry.channels:
            selector = volumeSelector(channel, guesses.get(channel), self.updateApplyButton)
            reference = " (reference)" if channel == entry.reference_channel else ""
            layout.addRow(f"{channel.upper()}{reference}:", selector)
            self.channelSelectors[channel] = selector
        self.ui.channelsHintLabel.text = _("The output is on the grid of the reference volume; all volumes "
                                           "must share it.")

    def onNodeAdded(self, caller, event):
        """A volume loaded after the bundle was chosen fills an empty channel whose name it matches."""
        entry = self.currentEntry()
        if entry is not None and entry.ok and not self.logic.running:
            qt.QTimer.singleShot(0, self.fillEmptyChannels)

    def fillEmptyChannels(self):
        entry = self.currentEntry()
        if entry is None or not entry.ok:
            return
        volumes = [v for v in slicer.util.getNodesByClass("vtkMRMLScalarVolumeNode")
                   if not v.IsA("vtkMRMLLabelMapVolumeNode")]
        guesses = channel_volume_names(entry, volumes)
        for channel, selector in self.channelSelectors.items():
            if selector.currentNode() is None and guesses.get(channel) is not None:
                selector.setCurrentNode(guesses[channel])

    # ---- parameters and validation -------------------------------------------------------------------------
    def parameters(self):
        """The panel's current settings as plain data for the logic."""
        entry = self.currentEntry()
        return InferenceParameters(
            bundle_path=str(entry.path) if entry is not None else "",
            input_volumes={channel: selector.currentNode() for channel, selector in self.channelSelectors.items()},
            device=self.ui.deviceComboBox.currentData or "auto",
            side=self.ui.sideComboBox.currentData or "auto",
            tta=self.ui.ttaCheckBox.checked,
            threshold=float(self.ui.thresholdSliderWidget.value),
            min_lesion_mm3=float(self.ui.minLesionSpinBox.value),
            fill_holes=self.ui.fillHolesCheckBox.checked,
            output_segmentation=self.ui.outputSegmentationSelector.currentNode(),
        )

    def updateApplyButton(self, *_args):
        if self.logic is None:
            return
        if self.logic.running:
            self.ui.applyButton.text = _("Cancel")
            self.ui.applyButton.enabled = True
            self.ui.applyButton.toolTip = _("Stop the segmentation.")
            return
        self.ui.applyButton.text = _("Apply")
        for section in filter(None, (self.folderSection, self.dicomExport)):
            section.updateButtons()
        parameters = self.parameters()
        if not self.restoring:
            self.logic.save_state(parameters)  # kept in the scene's parameter node, saved with the scene
        ok, reason = self.logic.validate(parameters)
        self.ui.applyButton.enabled = ok
        self.ui.applyButton.toolTip = _("Segment the stroke lesion of the input volumes.") if ok else reason
        self.ui.statusLabel.text = reason

    def ensureDependencies(self):
        """Check (and, after the user agrees, install) the Python packages lesionseg needs; True when ready."""
        if self.dependenciesReady:
            return True
        install = slicer_install_logic(MODULE_FOLDER)
        if install is None:
            logging.warning("LesionSeg: requirements.txt was not found beside the module; not checked.")
            self.dependenciesReady = True
            return True
        with slicer.util.WaitCursor():
            ok, message = install.ensure()
        if message:
            self.appendLog(message)
        if not ok:
            slicer.util.errorDisplay(message, windowTitle=_("LesionSeg dependencies"))
            return False
        self.dependenciesReady = True
        self.devicesDetected = True
        self.fillDeviceList()  # torch is there now: list the detected GPU
        return True

    # ---- running ----------------------------------------------------------------------------------------------
    def onApplyButton(self):
        if self.logic.running:
            self.logic.cancel()
            self.ui.statusLabel.text = _("Cancelling...")
            return
        if not self.ensureDependencies():
            return
        parameters = self.parameters()
        ok, reason = self.logic.validate(parameters)
        if not ok:
            self.ui.statusLabel.text = reason
            self.appendLog(reason)
            return
        self.ui.logTextEdit.clear()
        self.ui.progressBar.setRange(0, 0)
        self.ui.statusLabel.text = _("Segmenting...")
        try:
            self.logic.start(parameters, on_progress=self.onProgress, on_log=self.appendLog,
                             on_finished=self.onFinished)
        except Exception as error:  # a refusal, a file that cannot be written, a launcher that fails to start
            self.resetProgress()
            self.showException(_("The segmentation could not start"), error)
        self.updateApplyButton()

    def resetProgress(self, value=0):
        """The progress bar in a known, idle state."""
        self.ui.progressBar.setRange(0, 100)
        self.ui.progressBar.setValue(value)

    def showException(self, what, error):
        showException(self, what, error)

    def onProgress(self, progress):
        if progress.fraction is not None:
            self.ui.progressBar.setRange(0, 100)
            self.ui.progressBar.setValue(int(round(100 * progress.fraction)))
        self.ui.statusLabel.text = progress.message or progress.stage

    def appendLog(self, line):
        self.ui.logTextEdit.appendPlainText(line)

    def showError(self, message, details=""):
        self.ui.statusLabel.text = message
        self.appendLog(message)
        slicer.util.errorDisplay(message, detailedText=details or None, windowTitle=_("LesionSeg Inference"))

    def onFinished(self, outcome):
        self.resetProgress(100 if outcome.state == "succeeded" else 0)
        try:
            self.showOutcome(outcome)
        except Exception as error:  # showing the result must not leave the panel half-updated
            self.showException(_("The result could not be shown"), error)
        self.updateApplyButton()

    def showOutcome(self, outcome):
        if outcome.state == "cancelled":
            self.ui.statusLabel.text = outcome.error
            return
        if outcome.state != "succeeded":
            self.showError(outcome.error, "\n".join(outcome.job.log) if outcome.job is not None else "")
            return
        result = outcome.result
        for warning in result.warnings:
            self.appendLog(_("Warning: {warning}").format(warning=warning))
        slicer.util.setSliceViewerLayers(background=result.reference_volume, fit=True)
        result.segmentation_node.GetDisplayNode().SetVisibility(True)
        result.segmentation_node.CreateClosedSurfaceRepresentation()  # the lesion in the 3D view too
        wasBlocked = self.ui.outputSegmentationSelector.blockSignals(True)
        self.ui.outputSegmentationSelector.setCurrentNode(result.segmentation_node)  # the next run writes here
        self.ui.outputSegmentationSelector.blockSignals(wasBlocked)
        self.logic.save_state(self.parameters())
        self.ui.showProbabilityCheckBox.enabled = True
        self.ui.showBrainMaskCheckBox.enabled = result.brain_node is not None
        self.showResult()
        self.ui.statusLabel.text = _("Done: {summary}").format(summary=result.summary())

    def showResult(self):
        """The lesion volume and the lesion table of the current result."""
        result = self.logic.result
        table = self.ui.lesionTableWidget
        rows = display_rows(result.lesions) if result is not None else []
        table.setRowCount(len(rows))
        for index, row in enumerate(rows):
            for column, (key, _header) in enumerate(LESION_HEADERS):
                value = row.get(key)
                text = "" if value is None else (f"{value:.3g}" if isinstance(value, float) else str(value))
                table.setItem(index, column, qt.QTableWidgetItem(text))
        table.resizeColumnsToContents()
        self.ui.lesionVolumeLabel.text = result.summary() if result is not None else _("No segmentation yet.")

    # ---- after a run ----------------------------------------------------------------------------------------
    def onPostprocessingChanged(self, *_args):
        """Threshold, smallest lesion or hole filling changed: update the segment after a short rest."""
        self.updateApplyButton()
        if self.logic.result is not None and not self.logic.running and not self.restoring:
            self.rethresholdTimer.start()

    def onRethreshold(self):
        """Apply the post-processing controls to the result they belong to (same bundle and input); a segment
        edited by hand is replaced only after the user agrees."""
        parameters = self.parameters()
        try:
            outcome = self.logic.postprocess(parameters)
            if outcome.state == "edited":
                if not slicer.util.confirmYesNoDisplay(outcome.message, windowTitle=_("LesionSeg Inference")):
                    self.ui.statusLabel.text = _("The edited segment was kept; click Apply to segment again.")
                    return
                outcome = self.logic.postprocess(parameters, replace_edits=True)
        except Exception as error:
            self.showException(_("The segment could not be updated"), error)
            return
        if outcome.state == "updated":
            self.showResult()

    def onLesionClicked(self, row, _column):
        try:
            r, a, s = self.logic.jump_target(row)
        except IndexError:
            return
        slicer.modules.markups.logic().JumpSlicesToLocation(r, a, s, True)

    def onShowProbability(self, shown):
        result = self.logic.result
        if result is not None and slicer.mrmlScene.IsNodePresent(result.probability_node):
            slicer.util.setSliceViewerLayers(foreground=result.probability_node if shown else None,
                                             foregroundOpacity=0.5)

    def onShowBrainMask(self, shown):
        result = self.logic.result
        if result is not None and result.brain_node is not None and slicer.mrmlScene.IsNodePresent(result.brain_node):
            slicer.util.setSliceViewerLayers(label=result.brain_node if shown else None, labelOpacity=0.4)

    def onSceneStartImport(self, caller, event):
        self.restoring = True  # the loaded scene's parameter node is read when the import ends

    def onSceneEndImport(self, caller, event):
        """A scene was loaded: restore the panel from its parameter node and reconnect the result."""
        qt.QTimer.singleShot(0, self.restoreFromScene)

    def restoreFromScene(self):
        """Show the settings of the scene's parameter node and reconnect the result it names."""
        restorePanel(self)

    def onSceneStartClose(self, caller, event):
        if self.logic.running:
            self.logic.cancel()
        self.rethresholdTimer.stop()
        self.logic.result = None
        self.ui.showProbabilityCheckBox.checked = False
        self.ui.showBrainMaskCheckBox.checked = False
        self.ui.showProbabilityCheckBox.enabled = False
        self.ui.showBrainMaskCheckBox.enabled = False
        self.showResult()
        self.dicomExport.updateButtons()


class LesionSegInferenceTest(ScriptedLoadableModuleTest):
    """Self-test run inside Slicer: bad inputs are refused, and a synthetic case is segmented end to end on
    the CPU with a tiny bundle trained for one epoch (segment present, on the volume's grid, plausible volume).
    """

    def setUp(self):
        slicer.mrmlScene.Clear()

    def runTest(self):
        self.setUp()
        self.test_lesionseg_imports()
        self.test_bad_inputs_are_refused()
        self.setUp()
        try:
            self.test_segment_synthetic_case()
        except unittest.SkipTest as skipped:  # "Reload and Test" runs this method directly
            self.delayDisplay(f"Skipped the end-to-end test: {skipped}")

    def test_lesionseg_imports(self):
        import lesionseg

        self.assertTrue(lesionseg.__version__)
        ok, message = InferenceLogic.check_lesionseg()
        self.assertTrue(ok, message)

    def test_bad_inputs_are_refused(self):
        logic = InferenceLogic(slicer.mrmlScene)
        ok, reason = logic.validate(InferenceParameters())
        self.assertFalse(ok)
        self.assertIn("Choose a model bundle", reason)
        ok, reason = logic.validate(InferenceParameters(bundle_path=os.path.join(slicer.app.temporaryPath, "none.lsb")))
        self.assertFalse(ok)
        self.assertIn("does not exist", reason)

    def test_segment_synthetic_case(self):
        from LesionSegInferenceLib.SelfTest import run_inference_self_test, self_test_readiness

        # The Extensions Index's test machines have neither torch nor MONAI and install nothing in testing mode.
        ready, reason = self_test_readiness(find_extension_resource(MODULE_FOLDER, "requirements.txt"))
        if not ready:
            raise unittest.SkipTest(reason)
        self.delayDisplay("Training a tiny bundle and segmenting a synthetic FLAIR volume (about a minute)")
        folder = tempfile.mkdtemp(prefix="LesionSegInferenceTest-", dir=slicer.app.temporaryPath)
        result, problems = run_inference_self_test(slicer.mrmlScene, folder)
        self.assertEqual(problems, [])
        self.assertGreaterEqual(result.lesion_volume_ml, 0.0)
        self.delayDisplay(f"Segmented: {result.summary()}")
