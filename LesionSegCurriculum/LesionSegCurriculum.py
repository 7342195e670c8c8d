"""LesionSegCurriculum: prepare a stroke dataset and train a segmentation model with curriculum learning.

This file only holds the module's metadata, the panel's wiring and the self-test; the logic is in
``LesionSegCurriculumLib`` and the science in the ``lesionseg`` package.
"""

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

from LesionSegCurriculumLib import (
    BRAIN_EXTRACTION_LABELS,
    BRAIN_EXTRACTION_METHODS,
    CHARTS,
    CURRICULA,
    CURRICULUM_LABELS,
    DEFAULT_EPOCHS,
    DEFAULT_MINUTES,
    DEVICES,
    LOSSES,
    NETWORKS,
    PRESET_LABELS,
    PRESET_NAMES,
    VOLUME_NETWORKS,
    CurriculumLogic,
    DifficultyParameters,
    PrepareParameters,
    TrainParameters,
    preset_minutes,
)
from LesionSegCurriculumLib.Texts import ACKNOWLEDGEMENT, CASE_COLUMNS, DOCUMENTATION_URL, METRIC_CHOICES
from LesionSegCurriculumWidgets.PanelState import (
    LISTING_POLL_MS,
    ensureRequirements,
    rememberPath,
    restorePanel,
    showChart,
    showDifficulty,
    showException,
    startListing,
    storePanel,
)
from LesionSegCurriculumWidgets.RefinementSection import RefinementSection
from LesionSegInferenceLib import DEVICE_LABELS
from LesionSegInferenceLib.ExtensionResources import BRAIN_REQUIREMENTS_FILE_NAME
from LesionSegInferenceLib.InstallLogic import slicer_install_logic
from LesionSegInferenceLib.SlicerLaunchers import default_launcher

MODULE_FOLDER = os.path.dirname(os.path.abspath(__file__))

class LesionSegCurriculum(ScriptedLoadableModule):
    """Module metadata."""

    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = _("LesionSeg Curriculum")
        self.parent.categories = [translate("qSlicerAbstractCoreModule", "Segmentation")]
        # Its logic imports LesionSegInferenceLib (the background-run layer), so that module loads first; its
        # Segment Editor effect subclasses the Segmentations module's SegmentEditorEffects.
        self.parent.dependencies = ["LesionSegInference", "Segmentations"]
        self.parent.contributors = ["LesionSeg developers"]
        self.parent.helpText = _(
            "Prepare a stroke lesion dataset (ISLES'22, ISLES'24, ATLAS v2.0, an nnU-Net raw dataset or a CSV "
            "manifest), measure the difficulty of its slices, and train a segmentation model with "
            "curriculum learning: slices are ordered by difficulty and introduced from easy to hard. "
            "Preparation and training run in the background with Cancel; a cancelled run resumes. "
            "The trained bundle can be opened in LesionSeg Inference."
        )
        self.parent.helpText += f' See the <a href="{DOCUMENTATION_URL}">documentation</a>.'
        self.parent.acknowledgementText = _(ACKNOWLEDGEMENT)
        # The refinement tools as a Segment Editor effect, registered once the application has started.
        slicer.app.connect("startupCompleted()", registerSegmentEditorEffect)


def registerSegmentEditorEffect():
    """Register the "LesionSeg refine" Segment Editor effect (``LesionSegCurriculumLib/SegmentEditorEffect.py``)."""
    import qSlicerSegmentationsEditorEffectsPythonQt as effects

    instance = effects.qSlicerSegmentEditorScriptedEffect(None)
    instance.setPythonSource(os.path.join(MODULE_FOLDER, "LesionSegCurriculumWidgets", "SegmentEditorEffect.py")
                             .replace("\\", "/"))
    instance.self().register()


class LesionSegCurriculumWidget(ScriptedLoadableModuleWidget, VTKObservationMixin):
    """The panel: dataset and cases, Prepare, difficulty table and histograms, training with live charts."""

    def __init__(self, parent=None):
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic = None
        self.jobButton = None
        self.bundle = None
        self.dependenciesReady = False
        self.refinementSection = None
        self.restoring = False
        self.listingTimer = None
        self.chartShown = False

    def setup(self):
        ScriptedLoadableModuleWidget.setup(self)
        self.restoring = True  # until restoreFromScene: filling the widgets must not overwrite the scene's settings
        uiWidget = slicer.util.loadUI(self.resourcePath("UI/LesionSegCurriculum.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)

        self.logic = CurriculumLogic(scene=slicer.mrmlScene, launcher=default_launcher())
        self.ui.casesTableWidget.setColumnCount(len(CASE_COLUMNS))
        self.ui.casesTableWidget.setHorizontalHeaderLabels([_(name) for name in CASE_COLUMNS])
        for label, metrics in METRIC_CHOICES:
            self.ui.metricComboBox.addItem(_(label), ",".join(metrics))
        # "Preset default" (data "", read back as None) leaves a choice to the preset.
        for name in PRESET_NAMES:
            self.ui.presetComboBox.addItem(_(PRESET_LABELS[name]), name)
        self.ui.minutesSpinBox.specialValueText = _("Train the epochs below")
        self.ui.minutesSpinBox.value = DEFAULT_MINUTES
        self.ui.epochsSpinBox.value = DEFAULT_EPOCHS
        for comboBox in (self.ui.curriculumComboBox, self.ui.networkComboBox, self.ui.lossComboBox):
            comboBox.addItem(_("Preset default"), "")
        for name in CURRICULA:
            self.ui.curriculumComboBox.addItem(_(CURRICULUM_LABELS[name]), name)
        for name in NETWORKS:
            self.ui.networkComboBox.addItem(name, name)
        for name in LOSSES:
            self.ui.lossComboBox.addItem(name, name)
        for spinBox in (self.ui.sizeSpinBox, self.ui.negativesSpinBox, self.ui.foldsSpinBox):
            spinBox.minimum = spinBox.minimum - spinBox.singleStep  # one step below: "Preset default"
            spinBox.specialValueText = _("Preset default")
            spinBox.value = spinBox.minimum
        for name in DEVICES:
            self.ui.deviceComboBox.addItem(_(DEVICE_LABELS[name]), name)
        for name in BRAIN_EXTRACTION_METHODS:
            self.ui.brainExtractionComboBox.addItem(_(BRAIN_EXTRACTION_LABELS[name]), name)
        for metric, (title, _yLabel) in CHARTS.items():
            self.ui.chartComboBox.addItem(_(title), metric)

        for pathLineEdit in (self.ui.datasetPathLineEdit, self.ui.preparedPathLineEdit, self.ui.runPathLineEdit,
                             self.ui.revisionsPathLineEdit, self.ui.reviewBundlePathLineEdit):
            pathLineEdit.connect("currentPathChanged(QString)", lambda path, edit=pathLineEdit: rememberPath(edit, path))
            pathLineEdit.connect("currentPathChanged(QString)", self.updateButtons)
        for checkBox in (self.ui.resumeCheckBox, self.ui.allDataCheckBox, self.ui.starterCheckBox,
                         self.ui.areaCheckBox, self.ui.contrastCheckBox):
            checkBox.connect("toggled(bool)", self.updateButtons)
        for comboBox in (self.ui.networkComboBox, self.ui.curriculumComboBox, self.ui.metricComboBox,
                         self.ui.lossComboBox, self.ui.deviceComboBox, self.ui.brainExtractionComboBox):
            comboBox.connect("currentIndexChanged(int)", self.updateButtons)
        for spinBox in (self.ui.sizeSpinBox, self.ui.foldsSpinBox, self.ui.epochsSpinBox, self.ui.groupsSpinBox,
                        self.ui.batchSizeSpinBox):
            spinBox.connect("valueChanged(int)", self.updateButtons)
        for spinBox in (self.ui.negativesSpinBox, self.ui.minutesSpinBox):
            spinBox.connect("valueChanged(double)", self.updateButtons)
        self.ui.presetComboBox.connect("currentIndexChanged(int)", self.onPresetChanged)
        self.ui.patchSizeLineEdit.connect("textChanged(QString)", self.updateButtons)
        self.ui.authorLineEdit.connect("textChanged(QString)", self.updateButtons)
        self.ui.listCasesButton.connect("clicked(bool)", self.onListCasesButton)
        self.ui.prepareButton.connect("clicked(bool)", self.onPrepareButton)
        self.ui.difficultyButton.connect("clicked(bool)", self.onDifficultyButton)
        self.ui.trainButton.connect("clicked(bool)", self.onTrainButton)
        self.ui.histogramComboBox.connect("currentIndexChanged(int)", self.showHistogram)
        self.ui.chartComboBox.connect("currentIndexChanged(int)", self.showTrainingChart)
        self.ui.openInInferenceButton.connect("clicked(bool)", self.onOpenInInference)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.StartCloseEvent, self.onSceneStartClose)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.StartImportEvent, self.onSceneStartImport)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndImportEvent, self.onSceneEndImport)
        self.refinementSection = RefinementSection(self)
        self.listingTimer = qt.QTimer()
        self.listingTimer.setInterval(LISTING_POLL_MS)
        self.listingTimer.connect("timeout()", self.pollListing)

        self.ui.progressBar.setValue(0)
        self.restoreFromScene()

    def cleanup(self):
        if self.logic is not None and self.logic.running:
            self.logic.cancel()
        if self.listingTimer is not None:
            self.listingTimer.stop()
        if self.refinementSection is not None:
            self.refinementSection.forgetScene()
        self.removeObservers()

    def onPresetChanged(self, *_args):
        """A preset shows its own training time (0 for the paper preset: its 200 epochs)."""
        if not self.restoring:
            self.ui.minutesSpinBox.value = preset_minutes(self.ui.presetComboBox.currentData or "auto")
        self.updateButtons()

    def onSceneStartImport(self, caller, event):
        self.restoring = True  # the loaded scene's parameter node is read when the import ends

    def onSceneEndImport(self, caller, event):
        qt.QTimer.singleShot(0, self.restoreFromScene)

    def restoreFromScene(self):
        restorePanel(self)

    # ---- parameters -------------------------------------------------------------------------------------------
    @staticmethod
    def presetOr(spinBox):
        """A spin box's value, or None ("the preset's") at its special minimum."""
        return None if spinBox.value == spinBox.minimum else spinBox.value

    def prepareParameters(self):
        return PrepareParameters(dataset=self.ui.datasetPathLineEdit.currentPath,
                                 output=self.ui.preparedPathLineEdit.currentPath,
                                 preset=self.ui.presetComboBox.currentData or "auto",
                                 size=self.presetOr(self.ui.sizeSpinBox),
                                 negatives=self.presetOr(self.ui.negativesSpinBox),
                                 brain_extraction=self.ui.brainExtractionComboBox.currentData or "auto")

    def difficultyParameters(self):
        metrics = [name for name, box in (("area", self.ui.areaCheckBox), ("contrast", self.ui.contrastCheckBox))
                   if box.checked]
        return DifficultyParameters(prepared=self.ui.preparedPathLineEdit.currentPath, metrics=metrics,
                                    groups=self.ui.groupsSpinBox.value)

    def trainParameters(self):
        prepared = self.ui.preparedPathLineEdit.currentPath
        metrics = [m for m in (self.ui.metricComboBox.currentData or "contrast").split(",") if m]
        return TrainParameters(
            prepared=prepared, run=self.ui.runPathLineEdit.currentPath,
            preset=self.ui.presetComboBox.currentData or "auto", starter=self.ui.starterCheckBox.checked,
            minutes=float(self.ui.minutesSpinBox.value), epochs=int(self.ui.epochsSpinBox.value),
            network=self.ui.networkComboBox.currentData or None, loss=self.ui.lossComboBox.currentData or None,
            curriculum=self.ui.curriculumComboBox.currentData or None, metrics=metrics,
            groups=self.ui.groupsSpinBox.value, batch_size=self.ui.batchSizeSpinBox.value,
            folds=self.presetOr(self.ui.foldsSpinBox), all_data=self.ui.allDataCheckBox.checked,
            device=self.ui.deviceComboBox.currentData, resume=self.ui.resumeCheckBox.checked,
            patch_size=self.ui.patchSizeLineEdit.text,
            difficulty_csv=self.logic.difficulty_table_for(prepared, metrics))

    def updateButtons(self, *_args):
        """Each button enabled when its inputs are valid (the reason as tooltip); Cancel while its job runs."""
        running = self.logic.running
        if not self.restoring:
            storePanel(self)  # kept in the scene's parameter node, saved with the scene
        ok, reason = self.logic.validate_dataset_path(self.ui.datasetPathLineEdit.currentPath)
        listing = running and self.jobButton is self.ui.listCasesButton
        self.ui.listCasesButton.enabled = (ok and not running) or listing
        self.ui.listCasesButton.text = _("Cancel") if listing else _("List cases")
        self.ui.epochsSpinBox.enabled = self.ui.minutesSpinBox.value == 0
        self.ui.foldsSpinBox.enabled = not self.ui.allDataCheckBox.checked
        self.ui.patchSizeLineEdit.enabled = self.ui.networkComboBox.currentData in VOLUME_NETWORKS
        messages = []
        for button, parameters, label in ((self.ui.prepareButton, self.prepareParameters(), _("Prepare")),
                                          (self.ui.difficultyButton, self.difficultyParameters(),
                                           _("Measure difficulty")),
                                          (self.ui.trainButton, self.trainParameters(), _("Train"))):
            if running:
                isJob = button is self.jobButton
                button.text = _("Cancel") if isJob else label
                button.enabled = isJob
                continue
            ok, reason = parameters.validate()
            button.text = label
            button.enabled = ok
            button.toolTip = reason if not ok else ""
            if not ok:
                messages.append(reason)
        if not running:
            self.ui.statusLabel.text = messages[0] if messages else ""
        if self.refinementSection is not None:
            self.refinementSection.updateButtons()

    def ensureDependencies(self):
        """Check (and, after the user agrees, install) the Python packages lesionseg needs; True when ready."""
        if self.dependenciesReady:
            return True
        self.dependenciesReady = ensureRequirements(self, slicer_install_logic(MODULE_FOLDER))
        return self.dependenciesReady

    # ---- cases ------------------------------------------------------------------------------------------------
    def onListCasesButton(self):
        """List and check the cases in a worker thread (a timer delivers its progress); Cancel while it runs."""
        startListing(self)

    def pollListing(self):
        if self.logic.listing is None or not self.logic.listing.poll():
            self.listingTimer.stop()

    def showRows(self, rows):
        """Fill the case list with ``CaseRow`` objects."""
        table = self.ui.casesTableWidget
        table.setRowCount(len(rows))
        for index, row in enumerate(rows):
            cells = (row.case_id, row.patient_id, row.channels_text, _("yes") if row.has_mask else _("no"))
            for column, text in enumerate(cells):
                table.setItem(index, column, qt.QTableWidgetItem(text))
        table.resizeColumnsToContents()

    # ---- jobs -------------------------------------------------------------------------------------------------
    def startJob(self, button, start, parameters, onFinished):
        """Start a job (or cancel the running one when its button says Cancel)."""
        if self.logic.running:
            self.logic.cancel()
            self.ui.statusLabel.text = _("Cancelling...")
            return
        if not self.ensureDependencies():
            return
        ok, reason = parameters.validate()
        if not ok:
            self.showMessage(reason)
            return
        self.jobButton = button
        self.ui.progressBar.setRange(0, 0)
        self.ui.logTextEdit.clear()
        try:
            start(parameters, on_progress=self.onProgress, on_log=self.appendLog,
                  on_finished=lambda result: self.onJobFinished(result, onFinished))
        except Exception as error:  # a refusal, an unwritable folder, a launcher that fails to start
            self.jobButton = None
            self.ui.progressBar.setRange(0, 100)
            self.ui.progressBar.setValue(0)
            showException(self, _("The job could not start"), error)
        self.updateButtons()

    def onPrepareButton(self):
        parameters = self.prepareParameters()
        if not self.logic.running and parameters.needs_brain_extra and not ensureRequirements(
                self, slicer_install_logic(MODULE_FOLDER, BRAIN_REQUIREMENTS_FILE_NAME)):
            return  # the learned brain extractor chosen is not installed, and the user did not install it
        self.startJob(self.ui.prepareButton, self.logic.prepare, parameters, self.onPrepared)

    def onDifficultyButton(self):
        parameters = self.difficultyParameters()
        self.startJob(self.ui.difficultyButton, self.logic.measure_difficulty, parameters,
                      lambda result: self.onDifficultyMeasured(result, parameters))

    def onTrainButton(self):
        parameters = self.trainParameters()
        if not self.logic.running:
            self.ui.openInInferenceButton.enabled = False
            self.chartShown = False  # the chart layout is shown once per training, then only refreshed
        self.startJob(self.ui.trainButton, self.logic.train, parameters,
                      lambda result: self.onTrained(result, parameters))

    def onProgress(self, progress):
        if progress.fraction is not None:
            self.ui.progressBar.setRange(0, 100)
            self.ui.progressBar.setValue(int(round(100 * progress.fraction)))
        self.ui.statusLabel.text = progress.message or progress.stage
        if self.logic.charts_stale and self.jobButton is self.ui.trainButton:
            self.logic.update_charts()
            self.ui.chartComboBox.enabled = bool(self.logic.charts)
            self.showTrainingChart()

    def onJobFinished(self, result, onDone):
        self.jobButton = None
        self.ui.progressBar.setRange(0, 100)
        self.ui.progressBar.setValue(100 if result.ok else 0)
        self.updateButtons()
        if result.state == "cancelled":
            self.showMessage(_("Cancelled."))
        elif not result.ok and not (result.state == "partial" and onDone == self.onPrepared):  # partial: it says
            self.showError(result.error, "\n".join(result.log))
        try:
            onDone(result)
        except Exception as error:  # showing a finished job's results must not leave the panel half-updated
            showException(self, _("The results could not be shown"), error)
        self.updateButtons()

    def onPrepared(self, result):
        if result.ok or result.state == "partial":
            message, details = self.logic.prepare_outcome(result)
            self.showMessage(message)
            if details:
                self.appendLog(details)
                slicer.util.warningDisplay(message, detailedText=details, windowTitle=_("LesionSeg Curriculum"))
            self.updateButtons()

    def onDifficultyMeasured(self, result, parameters):
        if result.ok:
            showDifficulty(self, parameters)

    def showHistogram(self, *_args):
        display = self.logic.difficulty
        metric = self.ui.histogramComboBox.currentData
        if display is not None and metric in display.charts:
            slicer.modules.plots.logic().ShowChartInLayout(display.charts[metric])

    def showTrainingChart(self, *_args):
        chart = self.logic.charts.get(self.ui.chartComboBox.currentData)
        if chart is None and self.logic.charts:
            chart = next(iter(self.logic.charts.values()))
        if chart is not None:
            showChart(self, chart)

    def onTrained(self, result, parameters):
        if self.logic.charts_stale:
            self.logic.update_charts()
            self.showTrainingChart()
        if result.state == "cancelled":
            self.showMessage(_("Training cancelled; tick Resume and click Train to continue it."))
            self.ui.resumeCheckBox.checked = True
            return
        if not result.ok:
            return
        self.bundle = self.logic.bundle_of(result, parameters)
        if self.bundle is None:
            self.showError(_("Training ended but wrote no bundle in {run}.").format(run=parameters.run))
            return
        self.ui.openInInferenceButton.enabled = True
        self.showMessage(_("Bundle written to {path}.").format(path=self.bundle))
        if slicer.util.confirmYesNoDisplay(_("The model was written to {path}. Open it in LesionSeg Inference?")
                                           .format(path=self.bundle)):
            self.onOpenInInference()

    def onOpenInInference(self):
        if self.bundle is None:
            return
        slicer.util.selectModule("LesionSegInference")
        slicer.modules.lesionseginference.widgetRepresentation().self().selectBundle(str(self.bundle))

    # ---- messages ---------------------------------------------------------------------------------------------
    def appendLog(self, line):
        self.ui.logTextEdit.appendPlainText(line)

    def showMessage(self, message):
        self.ui.statusLabel.text = message
        self.appendLog(message)

    def showError(self, message, details=""):
        self.showMessage(message)
        slicer.util.errorDisplay(message, detailedText=details or None, windowTitle=_("LesionSeg Curriculum"))

    def onSceneStartClose(self, caller, event):
        if self.refinementSection is not None:
            self.refinementSection.forgetScene()
        self.logic.difficulty = None
        self.logic.charts = {}
        self.ui.histogramComboBox.clear()
        self.ui.histogramComboBox.enabled = False
        self.ui.chartComboBox.enabled = False


class LesionSegCurriculumTest(ScriptedLoadableModuleTest):
    """Self-test run inside Slicer: bad settings are refused, and a synthetic cohort is listed, prepared,
    measured (table and histograms) and trained for one epoch in two folds on the CPU, giving a bundle.
    """

    def setUp(self):
        slicer.mrmlScene.Clear()

    def runTest(self):
        self.setUp()
        self.test_lesionseg_imports()
        self.test_bad_settings_are_refused()
        self.setUp()
        try:
            self.test_prepare_and_train_synthetic_cohort()
        except unittest.SkipTest as skipped:  # "Reload and Test" runs this method directly
            self.delayDisplay(f"Skipped the end-to-end test: {skipped}")

    def test_lesionseg_imports(self):
        import lesionseg

        self.assertTrue(lesionseg.__version__)

    def test_bad_settings_are_refused(self):
        from lesionseg.errors import InputFileError

        logic = CurriculumLogic()
        ok, reason = logic.validate_dataset_path("")
        self.assertFalse(ok)
        self.assertIn("dataset folder", reason)
        missing = os.path.join(slicer.app.temporaryPath, "LesionSegCurriculumTest-no-such-folder")
        with self.assertRaises(InputFileError):
            logic.list_cases(missing)
        ok, reason = TrainParameters(prepared=missing, run=missing).validate()
        self.assertFalse(ok)
        self.assertIn("click Prepare first", reason)

    def test_prepare_and_train_synthetic_cohort(self):
        from LesionSegCurriculumLib.SelfTest import check_outcome, run_curriculum_self_test
        from LesionSegInferenceLib import find_extension_resource
        from LesionSegInferenceLib.SelfTest import self_test_readiness

        # The Extensions Index's test machines have neither torch nor MONAI and install nothing in testing mode.
        ready, reason = self_test_readiness(find_extension_resource(MODULE_FOLDER, "requirements.txt"))
        if not ready:
            raise unittest.SkipTest(reason)
        self.delayDisplay("Preparing and training on a synthetic cohort (about a minute)")
        folder = tempfile.mkdtemp(prefix="LesionSegCurriculumTest-", dir=slicer.app.temporaryPath)
        outcome = run_curriculum_self_test(slicer.mrmlScene, folder)
        self.assertEqual(check_outcome(outcome), [])
        self.delayDisplay(f"Trained {outcome.bundle}")
