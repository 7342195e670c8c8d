"""Widget helpers of the LesionSegCurriculum panel: its settings in the scene's parameter node, the case listing
in a worker thread, the training chart (the layout switched once per training), remembered folders and errors.

The values are read and written by ``LesionSegCurriculumLib.SceneState`` and the listing is
``LesionSegCurriculumLib.CaseListing``; this file only moves values between them and the widgets.
"""

import os
import traceback

import slicer
from slicer.i18n import tr as _

from LesionSegCurriculumLib.SceneState import CurriculumPanelState, parameter_node, restore_panel, store_panel

#: How often the panel collects the case listing's progress (ms).
LISTING_POLL_MS = 100


def rememberPath(pathLineEdit, path):
    """Add an existing folder or file to the path field's history (kept by its settingKey)."""
    if path and os.path.exists(path):
        pathLineEdit.addCurrentPathToHistory()


def selectData(comboBox, data):
    index = comboBox.findData(data if data is not None else "")
    if index >= 0:
        comboBox.currentIndex = index


def setPresetOr(spinBox, value):
    """A spin box's value, or its special minimum ("the preset's") for None."""
    spinBox.value = spinBox.minimum if value is None else value


def ensureRequirements(widget, install):
    """Check one requirements file's packages with its install logic (it asks before installing); True when ready.

    ``install`` is ``LesionSegInferenceLib.InstallLogic.slicer_install_logic(...)``, None without the file.
    """
    if install is None:
        return True
    with slicer.util.WaitCursor():
        ok, message = install.ensure()
    if message:
        widget.appendLog(message)
    if not ok:
        slicer.util.errorDisplay(message, windowTitle=_("LesionSeg dependencies"))
    return ok


def panelState(widget):
    """The panel's settings as a ``CurriculumPanelState``."""
    ui = widget.ui
    return CurriculumPanelState(widget.prepareParameters(), widget.difficultyParameters(), widget.trainParameters(),
                                ui.revisionsPathLineEdit.currentPath, ui.reviewBundlePathLineEdit.currentPath,
                                ui.authorLineEdit.text)


def storePanel(widget):
    store_panel(parameter_node(slicer.mrmlScene), panelState(widget))


def restorePanel(widget):
    """Fill the widgets from the scene's parameter node (the ``restoring`` flag set meanwhile)."""
    ui = widget.ui
    widget.restoring = True
    try:
        state = restore_panel(parameter_node(slicer.mrmlScene))
        prepare, difficulty, train = state.prepare, state.difficulty, state.train
        ui.datasetPathLineEdit.currentPath = prepare.dataset
        ui.preparedPathLineEdit.currentPath = prepare.output
        ui.runPathLineEdit.currentPath = train.run
        selectData(ui.presetComboBox, train.preset)
        ui.minutesSpinBox.value = train.minutes or 0.0
        ui.epochsSpinBox.value = train.epochs
        ui.starterCheckBox.checked = train.starter
        setPresetOr(ui.sizeSpinBox, prepare.size)
        setPresetOr(ui.negativesSpinBox, prepare.negatives)
        selectData(ui.brainExtractionComboBox, prepare.brain_extraction)
        ui.areaCheckBox.checked = "area" in difficulty.metrics
        ui.contrastCheckBox.checked = "contrast" in difficulty.metrics
        selectData(ui.metricComboBox, ",".join(train.metrics))
        ui.groupsSpinBox.value = difficulty.groups
        for comboBox, value in ((ui.curriculumComboBox, train.curriculum), (ui.networkComboBox, train.network),
                                (ui.lossComboBox, train.loss), (ui.deviceComboBox, train.device)):
            selectData(comboBox, value)
        setPresetOr(ui.foldsSpinBox, train.folds)
        if train.batch_size is not None:
            ui.batchSizeSpinBox.value = train.batch_size
        ui.allDataCheckBox.checked = train.all_data
        ui.patchSizeLineEdit.text = train.patch_size
        ui.resumeCheckBox.checked = train.resume
        ui.revisionsPathLineEdit.currentPath = state.revisions_path
        ui.reviewBundlePathLineEdit.currentPath = state.review_bundle_path
        ui.authorLineEdit.text = state.author
    except Exception as error:
        showException(widget, _("The LesionSeg settings of this scene could not be restored"), error)
    finally:
        widget.restoring = False
    widget.updateButtons()


def startListing(widget):
    """List cases in the background, or cancel the listing that runs."""
    logic = widget.logic
    if logic.listing is not None and logic.listing.running:
        logic.cancel()
        widget.ui.statusLabel.text = _("Cancelling...")
        return

    def progress(state):
        widget.ui.progressBar.setRange(0, 100)
        widget.ui.progressBar.setValue(int(round(100 * state.fraction)))
        widget.ui.statusLabel.text = state.message

    def finished(result):
        widget.jobButton = None
        widget.listingTimer.stop()
        widget.ui.progressBar.setRange(0, 100)
        widget.ui.progressBar.setValue(100 if result.ok else 0)
        widget.showRows(result.rows)
        if result.cancelled:
            widget.showMessage(_("Listing cancelled after {count} cases.").format(count=len(result.rows)))
        elif result.error:
            widget.showError(result.error)
        else:
            widget.showMessage(logic.summarize(result.rows))
        widget.updateButtons()

    try:
        logic.start_listing(widget.ui.datasetPathLineEdit.currentPath, on_progress=progress, on_finished=finished)
    except Exception as error:
        showException(widget, _("The cases could not be listed"), error)
        return
    widget.jobButton = widget.ui.listCasesButton
    widget.showRows([])
    widget.ui.progressBar.setRange(0, 0)
    widget.listingTimer.start()
    widget.updateButtons()


def showDifficulty(widget, parameters):
    """The measured difficulty table and its histograms, in the table and plot layout."""
    from lesionseg.errors import LesionSegError

    try:
        display = widget.logic.show_difficulty(parameters.csv_path, parameters.groups)
    except LesionSegError as error:
        widget.showError(str(error))
        return
    combo = widget.ui.histogramComboBox
    combo.blockSignals(True)
    combo.clear()
    for metric in display.charts:
        combo.addItem(metric, metric)
    combo.blockSignals(False)
    combo.enabled = bool(display.charts)
    widget.showMessage(display.summary())
    layoutManager = slicer.app.layoutManager()
    if layoutManager is not None:
        layoutManager.setLayout(slicer.vtkMRMLLayoutNode.SlicerLayoutFourUpPlotTableView)
        selection = slicer.app.applicationLogic().GetSelectionNode()
        selection.SetActiveTableID(display.table_node.GetID())
        slicer.app.applicationLogic().PropagateTableSelection()
    widget.showHistogram()


def showChart(widget, chart):
    """Show a training chart: the plot layout is switched to once per training (the user may change the layout
    while it trains); afterwards only the chart shown in the plot view changes."""
    layoutManager = slicer.app.layoutManager()
    if not widget.chartShown or layoutManager is None or layoutManager.plotWidget(0) is None:
        slicer.modules.plots.logic().ShowChartInLayout(chart)
        widget.chartShown = True
        return
    layoutManager.plotWidget(0).mrmlPlotViewNode().SetPlotChartNodeID(chart.GetID())


def showException(widget, what, error):
    """An error as one sentence in a dialog (the traceback in its details) and on the status line."""
    from lesionseg.errors import LesionSegError

    text = str(error).strip() or type(error).__name__
    if isinstance(error, LesionSegError):
        message = text[:1].upper() + text[1:]
    else:
        message = _("{what}: {kind}: {text}").format(what=what, kind=type(error).__name__, text=text)
    widget.showError(message, traceback.format_exc())
