"""The folders say the architecture: imports inside `model_zoo` point one way, leaves ← scratch ←
toy ← views, the Hugging Face wrappers use the leaves (and the views' attention maths) only, and
there is no import circle — function-level imports included, since a circle hidden inside a
function is still a circle.

The app too: no page imports another page, pages import the shared UI (pages/ui/) by its modules
only, and the library never imports the app."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "model_zoo"
LEAVES = {"utils", "packs", "distributed", "run_folder", "run_schema", "decode_step", "environment", "run_files"}
LEAVES |= {"content"}  # model_zoo/content.py: the teaching text of content/, read and checked
# layer -> the layers its modules may import
ALLOWED = {
    "leaves": {"leaves"},
    "scratch": {"leaves", "scratch"},
    "toy": {"leaves", "scratch", "toy"},
    "views": {"leaves", "scratch", "toy", "views"},
    "hf": {"leaves", "hf", "views"},
    "jobs": {"leaves", "scratch", "toy", "views", "hf", "jobs"},
    "classroom": {"leaves", "scratch", "toy", "views", "hf", "jobs", "classroom"},
}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def all_modules() -> dict[str, Path]:
    return {module_name(p): p for p in PACKAGE.rglob("*.py") if "metrics" not in p.parts}


def imports_of(path: Path, modules: dict[str, Path]) -> set[str]:
    """Every model_zoo module `path` imports, anywhere in the file."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("model_zoo")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("model_zoo"):
            for alias in node.names:
                submodule = f"{node.module}.{alias.name}"
                found.add(submodule if submodule in modules else node.module)
    return {m for m in found if m in modules}


def layer(module: str) -> str | None:
    parts = module.split(".")
    if len(parts) == 2 and parts[1] in LEAVES:
        return "leaves"
    if len(parts) >= 2 and parts[1] in ALLOWED:
        return parts[1]
    return None  # the package itself, the command line: free to import anything


def test_imports_point_one_way():
    modules = all_modules()
    wrong = []
    for name, path in modules.items():
        mine = layer(name)
        if mine is None:
            continue
        for target in imports_of(path, modules):
            theirs = layer(target)
            if theirs is not None and theirs not in ALLOWED[mine]:
                wrong.append(f"{name} ({mine}) imports {target} ({theirs})")
    assert not wrong, "\n".join(wrong)


def test_there_is_no_import_circle():
    modules = all_modules()
    graph = {name: imports_of(path, modules) - {name} for name, path in modules.items()}
    state: dict[str, str] = {}
    circles = []

    def visit(node: str, trail: list[str]) -> None:
        state[node] = "open"
        for target in graph[node]:
            if state.get(target) == "open":
                circles.append(" -> ".join([*trail[trail.index(target) :], target]))
            elif target not in state:
                visit(target, [*trail, target])
        state[node] = "done"

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert not circles, "\n".join(circles)


def test_the_library_never_imports_streamlit():
    hits = [name for name, path in all_modules().items() if "import streamlit" in path.read_text(encoding="utf-8")]
    assert not hits


def top_level_imports(path: Path) -> list[str]:
    """The modules `path` imports at its top level, in order (`from __future__` left out)."""
    names = []
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module != "__future__":
            names.append(node.module or "")
    return names


def test_every_hugging_face_module_imports_the_package_before_the_libraries():
    # model_zoo/hf/__init__.py imports transformers, datasets and evaluate whole, in one thread;
    # a module of the package that imports them must import the package first, or a second thread
    # can run it against half-imported libraries (tests/test_hf_import_race.py).
    libraries = {"transformers", "datasets", "evaluate"}
    checked = []
    for name, path in all_modules().items():
        imports = top_level_imports(path)
        if name.startswith("model_zoo.hf.") and any(m.split(".")[0] in libraries for m in imports):
            checked.append(name)
            assert imports[0] == "model_zoo.hf", f"{name}: its first import must be `import model_zoo.hf`"
    assert len(checked) >= 4, checked  # data, models, loop, trainer at least


# -- the app: pages, their shared UI (pages/ui/), and the library ---------------------------------------
PAGES = ROOT / "pages"
UI = PAGES / "ui"


def app_files() -> list[Path]:
    """The app's Python files: the entry script, every page and page helper, the shared UI."""
    return [ROOT / "streamlit_app.py", *sorted(PAGES.glob("*.py")), *sorted(UI.glob("*.py"))]


def imported_names(path: Path) -> list[tuple[str, list[str]]]:
    """(module, names) of every import in `path`, anywhere in the file (function-level included);
    `import a.b` gives ("a.b", [])."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(alias.name, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.module, [alias.name for alias in node.names]))
    return found


def page_names() -> set[str]:
    """The pages the navigation serves: `pages/*.py` without a leading underscore (`_x.py` are helpers)."""
    return {p.stem for p in PAGES.glob("*.py") if not p.stem.startswith("_")}


def test_no_page_imports_another_page():
    pages = page_names()
    wrong = []
    for path in app_files():
        for module, names in imported_names(path):
            targets = [module] + [f"{module}.{n}" for n in names]
            hits = [t for t in targets if t.startswith("pages.") and t.split(".")[1] in pages]
            wrong += [f"{path.relative_to(ROOT)} imports the page {hit}" for hit in hits]
    assert not wrong, "\n".join(wrong)


def test_the_app_imports_the_shared_ui_only_by_its_modules():
    modules = {p.stem for p in UI.glob("*.py") if p.stem != "__init__"}
    wrong = []
    for path in app_files():
        for module, names in imported_names(path):
            where = path.relative_to(ROOT)
            if module == "pages.ui":
                wrong += [f"{where}: `from pages.ui import {n}` is not a module" for n in names if n not in modules]
                if not names:
                    wrong.append(f"{where}: `import pages.ui` (import its modules by name)")
            elif module.startswith("pages.ui.") and module.split(".")[2] not in modules:
                wrong.append(f"{where}: {module} is not a module of pages/ui/")
            elif module == "pages" and "_ui" in names or module == "pages._ui":
                wrong.append(f"{where}: pages/_ui.py is gone, import from pages/ui/ by module")
    assert not wrong, "\n".join(wrong)


def test_the_shared_ui_package_defines_nothing_itself():
    # pages/ui/__init__.py is its table of contents: a name defined (or re-exported) there would be
    # a second way in, and pages would stop saying which module they use.
    body = ast.parse((UI / "__init__.py").read_text(encoding="utf-8")).body
    assert [type(node).__name__ for node in body] == ["Expr"], "pages/ui/__init__.py holds only its docstring"


def test_the_library_never_imports_the_app():
    hits = [
        f"{name} imports {module}"
        for name, path in all_modules().items()
        for module, _ in imported_names(path)
        if module.split(".")[0] in ("pages", "streamlit_app")
    ]
    assert not hits, "\n".join(hits)
