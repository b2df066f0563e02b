"""A minimal stand-in for gradio (the webui's UI library is not installed here): the
component constructors and ``Button.click`` the extension's ``ui()`` uses, recording
what was built. Components announce themselves to ``_after_component_hooks`` the way the
webui's patched gradio calls ``script_callbacks.after_component_callback``."""

from __future__ import annotations

from typing import Any

__version__ = "3.41.2-harness"
_after_component_hooks: list = []
_context: list = []


class Component:
    def __init__(self, value: Any = None, *args: Any, **kwargs: Any):
        self.value = value
        self.args = args
        self.kwargs = kwargs
        self.elem_id = kwargs.get("elem_id")
        self.label = kwargs.get("label")
        self.children: list = []
        if _context:
            _context[-1].children.append(self)
        for hook in list(_after_component_hooks):
            hook(self, **kwargs)

    def __enter__(self):
        _context.append(self)
        return self

    def __exit__(self, *exc):
        _context.pop()
        return False


class Blocks(Component):
    pass


class Row(Component):
    pass


class Column(Component):
    pass


class Group(Component):
    pass


class Accordion(Component):
    def __init__(self, label: str = "", open: bool = True, **kwargs: Any):
        super().__init__(None, label=label, open=open, **kwargs)


class Checkbox(Component):
    pass


class Number(Component):
    pass


class Slider(Component):
    pass


class Textbox(Component):
    pass


class Markdown(Component):
    pass


class Dropdown(Component):
    pass


class File(Component):
    pass


class Radio(Component):
    def __init__(self, choices: Any = None, value: Any = None, **kwargs: Any):
        super().__init__(value, choices=choices, **kwargs)


class Button(Component):
    def __init__(self, value: Any = None, **kwargs: Any):
        super().__init__(value, **kwargs)
        self.events: list[dict] = []

    def click(self, fn=None, inputs=None, outputs=None, **kwargs: Any):
        self.events.append({"fn": fn, "inputs": inputs or [], "outputs": outputs or []})


def update(**kwargs: Any) -> dict:
    return {"__type__": "update", **kwargs}
