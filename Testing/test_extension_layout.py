"""The Slicer extension's files: CMake lists, icons, terminology and requirements, and a CMake build.

The CMake lists are read as text (the variables of ``set(...)`` expanded), so these checks need no
Slicer build tree. The last test configures, builds and installs the extension with CMake against a
stand-in Slicer package written here (a few macros that mimic what Slicer's do: the scripted-module
macro refuses a listed file that does not exist, files are copied to the scripted-modules folder and
installed from it), then imports the installed Python files without Slicer or Qt.
"""

from __future__ import annotations

import json
import re
import shutil
import struct
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
MODULES = ("LesionSegInference", "LesionSegCurriculum")
REQUIRED_EXTENSION_VARIABLES = (
    "EXTENSION_HOMEPAGE",
    "EXTENSION_CATEGORY",
    "EXTENSION_CONTRIBUTORS",
    "EXTENSION_DESCRIPTION",
    "EXTENSION_ICONURL",
    "EXTENSION_SCREENSHOTURLS",
    "EXTENSION_DEPENDS",
)
#: SNOMED CT: 49755003 "Morphologically altered structure", 55641003 "Infarct (morphologic abnormality)".
SNOMED_CATEGORY = "49755003"
SNOMED_INFARCT = "55641003"
#: Packages that Slicer ships or that come through the PyTorch extension: never in requirements.txt.
SHIPPED_BY_SLICER = {"torch", "numpy", "scipy", "simpleitk", "pillow"}


# ----------------------------------------------------------------------------- reading CMake lists
def _strip_comments(text: str) -> str:
    """CMake text without ``#`` comments (none of our lists has a ``#`` inside a quoted string)."""
    return "\n".join(line.split("#", 1)[0] if '"' not in line else line for line in text.splitlines())


def _commands(text: str, name: str) -> list[str]:
    """The argument text of every ``name(...)`` call, in order (no nested parentheses in our lists)."""
    return re.findall(rf"(?im)^\s*{name}\s*\((.*?)\)", _strip_comments(text), flags=re.DOTALL)


def _set_variables(text: str) -> dict[str, str]:
    """``set(VAR value...)`` assignments in file order, each value expanded with the earlier ones."""
    variables: dict[str, str] = {}
    for arguments in _commands(text, "set"):
        parts = arguments.split(None, 1)
        value = parts[1].strip() if len(parts) > 1 else ""
        if value.startswith('"') and value.endswith('"'):
            value = value[1:-1]
        variables[parts[0]] = _expand(value, variables)
    return variables


def _expand(value: str, variables: dict[str, str]) -> str:
    return re.sub(r"\$\{(\w+)\}", lambda match: variables.get(match.group(1), match.group(0)), value)


def _module_lists(module: str) -> tuple[dict[str, str], list[str], list[str]]:
    text = (REPO / module / "CMakeLists.txt").read_text(encoding="utf-8")
    variables = _set_variables(text)
    scripts = variables.get("MODULE_PYTHON_SCRIPTS", "").split()
    resources = variables.get("MODULE_PYTHON_RESOURCES", "").split()
    return variables, scripts, resources


def _top_level() -> str:
    return (REPO / "CMakeLists.txt").read_text(encoding="utf-8")


# ----------------------------------------------------------------------------- module CMake lists
@pytest.mark.parametrize("module", MODULES)
def test_module_cmake_lists_name_existing_files(module):
    variables, scripts, resources = _module_lists(module)
    assert variables.get("MODULE_NAME") == module
    assert scripts and resources
    assert len(set(scripts)) == len(scripts), f"{module}: a script is listed twice"
    assert len(set(resources)) == len(resources), f"{module}: a resource is listed twice"
    missing = [name for name in scripts + resources if not (REPO / module / name).is_file()]
    assert not missing, f"{module}/CMakeLists.txt lists files that do not exist: {missing}"


@pytest.mark.parametrize("module", MODULES)
def test_every_module_script_and_resource_is_listed(module):
    _, scripts, resources = _module_lists(module)
    folder = REPO / module
    python_files = {
        path.relative_to(folder).as_posix()
        for path in folder.rglob("*.py")
        if "Testing" not in path.relative_to(folder).parts and "__pycache__" not in path.parts
    }
    assert python_files - set(scripts) == set(), f"{module}: Python files missing from MODULE_PYTHON_SCRIPTS"
    resource_files = {
        path.relative_to(folder).as_posix() for path in (folder / "Resources").rglob("*") if path.is_file()
    }
    assert resource_files - set(resources) == set(), f"{module}: files missing from MODULE_PYTHON_RESOURCES"
    assert f"{module}.py" in scripts
    assert f"{module}Lib/__init__.py" in scripts
    assert {f"Resources/UI/{module}.ui", f"Resources/Icons/{module}.png"} <= set(resources)


@pytest.mark.parametrize("module", MODULES)
def test_module_is_built_as_a_scripted_module_with_generic_tests(module):
    text = (REPO / module / "CMakeLists.txt").read_text(encoding="utf-8")
    (call,) = _commands(text, "slicerMacroBuildScriptedModule")
    words = call.split()
    assert words[words.index("NAME") + 1] == "${MODULE_NAME}"
    assert words[words.index("SCRIPTS") + 1] == "${MODULE_PYTHON_SCRIPTS}"
    assert words[words.index("RESOURCES") + 1] == "${MODULE_PYTHON_RESOURCES}"
    assert "WITH_GENERIC_TESTS" in words
    assert "${MODULE_NAME}.py" in "".join(_commands(text, "slicer_add_python_unittest"))
    for subdirectory in _commands(text, "add_subdirectory"):
        assert (REPO / module / subdirectory.strip() / "CMakeLists.txt").is_file()
    assert (REPO / module / "Testing" / "Python" / "CMakeLists.txt").is_file()


# ----------------------------------------------------------------------------- top-level CMake list
def test_top_level_cmake_declares_the_extension():
    text = _top_level()
    variables = _set_variables(text)
    assert [arguments.strip() for arguments in _commands(text, "project")] == ["LesionSeg"]
    for name in REQUIRED_EXTENSION_VARIABLES:
        assert variables.get(name, "").strip(), f"{name} is not set"
    assert variables["EXTENSION_CATEGORY"] == "Segmentation"
    assert "PyTorch" in variables["EXTENSION_DEPENDS"].split()
    for url_variable in ("EXTENSION_HOMEPAGE", "EXTENSION_ICONURL", "EXTENSION_SCREENSHOTURLS"):
        assert variables[url_variable].startswith("https://"), url_variable
    # The icon address points at the extension icon of this repository.
    assert variables["EXTENSION_ICONURL"].endswith("/Resources/Icons/LesionSeg.png")
    assert (REPO / "Resources" / "Icons" / "LesionSeg.png").is_file()


def test_top_level_cmake_finds_slicer_adds_each_module_and_packages_it():
    text = _strip_comments(_top_level())
    module_folders = sorted(
        path.parent.name
        for path in REPO.glob("*/CMakeLists.txt")
        if _commands(path.read_text(encoding="utf-8"), "slicerMacroBuildScriptedModule")
    )
    added = [argument.strip() for argument in _commands(text, "add_subdirectory")]
    assert sorted(added) == module_folders == sorted(MODULES)

    find_slicer = text.index("find_package(Slicer REQUIRED)")
    use_file = text.index("include(${Slicer_USE_FILE})")
    first_module = min(text.index(f"add_subdirectory({name})") for name in MODULES)
    last_module = max(text.index(f"add_subdirectory({name})") for name in MODULES)
    generate_config = text.index("include(${Slicer_EXTENSION_GENERATE_CONFIG})")
    cpack = text.index("include(${Slicer_EXTENSION_CPACK})")
    assert find_slicer < use_file < first_module
    assert last_module < generate_config < cpack
    assert re.search(r'if\(Slicer_VERSION VERSION_LESS "5\.10"\)\s*message\(FATAL_ERROR', text)


def test_lesionseg_package_is_installed_into_the_scripted_modules_folder():
    text = _top_level()
    (call,) = _commands(text, "ctkMacroCompilePythonScript")
    words = call.split()
    build_folder = "${CMAKE_BINARY_DIR}/${Slicer_QTSCRIPTEDMODULES_LIB_DIR}"
    assert words[words.index("DESTINATION_DIR") + 1] == build_folder
    assert words[words.index("INSTALL_DIR") + 1] == "${Slicer_INSTALL_QTSCRIPTEDMODULES_LIB_DIR}"
    assert "NO_INSTALL_SUBDIR" in words
    listed = _set_variables(text)["LESIONSEG_PYTHON_RESOURCES"].split()
    assert {"Resources/LesionSeg.term.json", "Resources/requirements.txt"} <= set(listed)
    assert all((REPO / name).is_file() for name in listed)


# ----------------------------------------------------------------------------- icons
ICONS = ("Resources/Icons/LesionSeg.png",) + tuple(f"{m}/Resources/Icons/{m}.png" for m in MODULES)


@pytest.mark.parametrize("icon", ICONS)
def test_icons_are_drawn_128_pixel_pngs(icon):
    data = (REPO / icon).read_bytes()
    # PNG signature, then the IHDR chunk: length, type, width, height (big-endian), read by hand.
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == (128, 128)

    import numpy as np
    from PIL import Image

    with Image.open(REPO / icon) as image:
        rgba = np.asarray(image.convert("RGBA"))
    assert np.count_nonzero(rgba[..., 3]) > 0.2 * 128 * 128, "the icon is (nearly) empty"
    assert len(np.unique(rgba.reshape(-1, 4), axis=0)) > 20, "the icon is a flat patch, not a drawing"


# ----------------------------------------------------------------------------- terminology
TERMINOLOGY = REPO / "Resources" / "LesionSeg.term.json"


def test_terminology_file_has_the_stroke_lesion_type():
    description = json.loads(TERMINOLOGY.read_text(encoding="utf-8"))
    assert description["SegmentationCategoryTypeContextName"]
    entries = [
        (category, kind)
        for category in description["SegmentationCodes"]["Category"]
        for kind in category.get("Type", [])
        if kind.get("3dSlicerLabel") == "Stroke lesion"
    ]
    assert len(entries) == 1
    category, kind = entries[0]
    assert (category["CodingSchemeDesignator"], category["CodeValue"]) == ("SCT", SNOMED_CATEGORY)
    assert (kind["CodingSchemeDesignator"], kind["CodeValue"], kind["CodeMeaning"]) == (
        "SCT", SNOMED_INFARCT, "Infarct")
    assert len(kind["recommendedDisplayRGBValue"]) == 3
    assert all(0 <= value <= 255 for value in kind["recommendedDisplayRGBValue"])


def test_slicer_reads_the_terminology_and_it_matches_lesionseg_labels():
    slicer = pytest.importorskip("slicer")
    from lesionseg import labels

    logic = slicer.vtkSlicerTerminologiesModuleLogic()
    context = logic.LoadTerminologyFromFile(str(TERMINOLOGY))
    assert context == labels.TERMINOLOGY_CONTEXT

    entry = slicer.vtkSlicerTerminologyEntry()
    assert logic.FindTypeInTerminologyBy3dSlicerLabel(context, "Stroke lesion", entry)
    assert entry.GetCategoryObject().GetCodeValue() == SNOMED_CATEGORY
    assert entry.GetTypeObject().GetCodeValue() == SNOMED_INFARCT
    expected_rgb = tuple(round(255 * channel) for channel in labels.STROKE_LESION_COLOR)
    assert tuple(entry.GetTypeObject().GetRecommendedDisplayRGBValue()) == expected_rgb
    # Context, category and type of the entry Slicer builds equal those lesionseg writes into segments.
    assert logic.SerializeTerminologyEntry(entry).split("~")[:3] == labels.terminology_entry().split("~")[:3]


# ----------------------------------------------------------------------------- requirements for Slicer
def _requirements() -> list:
    from packaging.requirements import Requirement

    lines = (REPO / "Resources" / "requirements.txt").read_text(encoding="utf-8").splitlines()
    return [Requirement(line) for line in (raw.split("#", 1)[0].strip() for raw in lines) if line]


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_requirements_list_what_lesionseg_needs_beyond_slicer():
    from packaging.requirements import Requirement

    requirements = _requirements()
    names = {_normalise(requirement.name) for requirement in requirements}
    assert len(names) == len(requirements)
    assert not names & SHIPPED_BY_SLICER
    tomllib = pytest.importorskip("tomllib")  # Python 3.11 and later
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    needed = {_normalise(Requirement(text).name) for text in project["dependencies"]} - SHIPPED_BY_SLICER
    assert names == needed
    for requirement in requirements:
        assert str(requirement.specifier), f"{requirement.name} has no version range"
        installed = metadata.version(requirement.name)
        assert requirement.specifier.contains(installed, prereleases=True), (
            f"{requirement.name} {installed}, the version tested here, is outside {requirement.specifier}")


# ----------------------------------------------------------------------------- a CMake build
_FAKE_SLICER_CONFIG = """
set(Slicer_VERSION "@VERSION@")
set(Slicer_USE_PYTHONQT ON)
set(Slicer_QTSCRIPTEDMODULES_LIB_DIR "lib/Slicer-5.10/qt-scripted-modules")
set(Slicer_INSTALL_QTSCRIPTEDMODULES_LIB_DIR "${Slicer_QTSCRIPTEDMODULES_LIB_DIR}")
set(Slicer_USE_FILE "${CMAKE_CURRENT_LIST_DIR}/UseSlicer.cmake")
set(Slicer_EXTENSION_GENERATE_CONFIG "${CMAKE_CURRENT_LIST_DIR}/GenerateConfig.cmake")
set(Slicer_EXTENSION_CPACK "${CMAKE_CURRENT_LIST_DIR}/CPack.cmake")
"""

_FAKE_USE_SLICER = """
macro(ctkMacroCompilePythonScript)
  cmake_parse_arguments(_py "NO_INSTALL_SUBDIR" "TARGET_NAME;DESTINATION_DIR;INSTALL_DIR" "SCRIPTS;RESOURCES"
    ${ARGN})
  if(NOT _py_NO_INSTALL_SUBDIR)
    message(FATAL_ERROR "this stand-in only supports NO_INSTALL_SUBDIR")
  endif()
  set(_outputs)
  foreach(_file IN LISTS _py_SCRIPTS _py_RESOURCES)
    set(_out "${_py_DESTINATION_DIR}/${_file}")
    add_custom_command(OUTPUT "${_out}"
      COMMAND ${CMAKE_COMMAND} -E copy "${CMAKE_CURRENT_SOURCE_DIR}/${_file}" "${_out}"
      DEPENDS "${CMAKE_CURRENT_SOURCE_DIR}/${_file}")
    list(APPEND _outputs "${_out}")
    get_filename_component(_subdir "${_file}" DIRECTORY)
    install(FILES "${_out}" DESTINATION "${_py_INSTALL_DIR}/${_subdir}")
  endforeach()
  add_custom_target(Copy${_py_TARGET_NAME}PythonFiles ALL DEPENDS ${_outputs})
endmacro()

macro(slicerMacroBuildScriptedModule)
  cmake_parse_arguments(_mod "WITH_GENERIC_TESTS" "NAME" "SCRIPTS;RESOURCES" ${ARGN})
  foreach(_file IN LISTS _mod_SCRIPTS _mod_RESOURCES)
    if(NOT EXISTS "${CMAKE_CURRENT_SOURCE_DIR}/${_file}")
      message(FATAL_ERROR "slicerMacroBuildScriptedModule given nonexistent file '${_file}'")
    endif()
  endforeach()
  file(APPEND "${CMAKE_BINARY_DIR}/modules.txt" "${_mod_NAME} generic_tests=${_mod_WITH_GENERIC_TESTS}\\n")
  ctkMacroCompilePythonScript(TARGET_NAME ${_mod_NAME} SCRIPTS "${_mod_SCRIPTS}" RESOURCES "${_mod_RESOURCES}"
    DESTINATION_DIR ${CMAKE_BINARY_DIR}/${Slicer_QTSCRIPTEDMODULES_LIB_DIR}
    INSTALL_DIR ${Slicer_INSTALL_QTSCRIPTEDMODULES_LIB_DIR} NO_INSTALL_SUBDIR)
endmacro()

macro(slicer_add_python_unittest)
  cmake_parse_arguments(_test "" "SCRIPT" "" ${ARGN})
  file(APPEND "${CMAKE_BINARY_DIR}/unittests.txt" "${_test_SCRIPT}\\n")
endmacro()
"""

_FAKE_GENERATE_CONFIG = """
file(WRITE "${CMAKE_BINARY_DIR}/extension.txt"
  "${EXTENSION_CATEGORY}|${EXTENSION_DEPENDS}|${EXTENSION_ICONURL}\\n")
"""


def _fake_slicer(folder: Path, version: str) -> Path:
    folder.mkdir(parents=True)
    (folder / "SlicerConfig.cmake").write_text(_FAKE_SLICER_CONFIG.replace("@VERSION@", version))
    (folder / "UseSlicer.cmake").write_text(_FAKE_USE_SLICER)
    (folder / "GenerateConfig.cmake").write_text(_FAKE_GENERATE_CONFIG)
    (folder / "CPack.cmake").write_text("file(WRITE \"${CMAKE_BINARY_DIR}/cpack.txt\" \"included\\n\")\n")
    return folder


def _package_python_files() -> set[str]:
    """The lesionseg package's Python files, relative to the repository."""
    return {path.relative_to(REPO).as_posix() for path in (REPO / "lesionseg").rglob("*.py")
            if "__pycache__" not in path.parts}


def _cmake_executable() -> str | None:
    """cmake on the PATH, or the one pip installed beside this Python (the ``cmake`` wheel)."""
    beside_python = Path(sys.executable).with_name("cmake")
    return shutil.which("cmake") or (str(beside_python) if beside_python.is_file() else None)


def _cmake(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([_cmake_executable(), *args], cwd=cwd, capture_output=True, text=True, encoding="utf-8", errors="replace", timeout=300)


@pytest.mark.slow
@pytest.mark.skipif(_cmake_executable() is None, reason="cmake is not installed")
def test_cmake_builds_and_installs_the_extension(tmp_path):
    # Listed before configuring and again after installing: others may add files to lesionseg meanwhile.
    package_before = _package_python_files()
    slicer_dir = _fake_slicer(tmp_path / "Slicer", "5.10.1")
    build, install = tmp_path / "build", tmp_path / "install"
    configure = _cmake("-S", str(REPO), "-B", str(build), f"-DSlicer_DIR={slicer_dir}", "-DBUILD_TESTING=ON",
                       cwd=tmp_path)
    assert configure.returncode == 0, configure.stdout + configure.stderr
    built = _cmake("--build", str(build), cwd=tmp_path)
    assert built.returncode == 0, built.stdout + built.stderr
    installed = _cmake("--install", str(build), "--prefix", str(install), cwd=tmp_path)
    assert installed.returncode == 0, installed.stdout + installed.stderr

    assert sorted((build / "modules.txt").read_text(encoding="utf-8").split("\n")[:-1]) == sorted(
        f"{module} generic_tests=TRUE" for module in MODULES)
    assert sorted((build / "unittests.txt").read_text(encoding="utf-8").split()) == sorted(f"{m}.py" for m in MODULES)
    category, depends, icon_url = (build / "extension.txt").read_text(encoding="utf-8").strip().split("|")
    assert (category, depends) == ("Segmentation", "PyTorch") and icon_url.startswith("https://")
    assert (build / "cpack.txt").is_file()

    scripted = install / "lib" / "Slicer-5.10" / "qt-scripted-modules"
    expected = [
        "lesionseg/__init__.py", "lesionseg/errors.py", "lesionseg/data/discover.py",
        "Resources/LesionSeg.term.json", "Resources/requirements.txt",
    ]
    for module in MODULES:
        expected += [f"{module}.py", f"{module}Lib/__init__.py", f"{module}Lib/Logic.py",
                     f"Resources/UI/{module}.ui", f"Resources/Icons/{module}.png"]
    missing = [name for name in expected if not (scripted / name).is_file()]
    assert not missing, f"not installed: {missing}"
    installed_package = {p.relative_to(scripted).as_posix() for p in (scripted / "lesionseg").rglob("*.py")}
    assert package_before <= installed_package <= _package_python_files()
    assert not list(scripted.rglob("__pycache__"))

    # The installed tree alone (no site-packages, no Slicer, no Qt) provides lesionseg and both Libs.
    probe = (
        "import sys; sys.path.insert(0, sys.argv[1]); import lesionseg, LesionSegInferenceLib, "
        "LesionSegCurriculumLib; print(lesionseg.__file__); print(LesionSegInferenceLib.__file__)"
    )
    result = subprocess.run([sys.executable, "-S", "-c", probe, str(scripted)], capture_output=True,
                            text=True, encoding="utf-8", errors="replace", timeout=120)
    assert result.returncode == 0, result.stderr
    for line in result.stdout.split():
        assert Path(line).resolve().is_relative_to(scripted.resolve())


@pytest.mark.skipif(_cmake_executable() is None, reason="cmake is not installed")
def test_cmake_refuses_a_slicer_older_than_5_8(tmp_path):
    slicer_dir = _fake_slicer(tmp_path / "Slicer", "5.8.2")
    configure = _cmake("-S", str(REPO), "-B", str(tmp_path / "build"), f"-DSlicer_DIR={slicer_dir}",
                       cwd=tmp_path)
    assert configure.returncode != 0
    assert "needs 3D Slicer 5.10 or later" in configure.stderr
