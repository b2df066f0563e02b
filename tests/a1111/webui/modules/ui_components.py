"""``InputAccordion``: an accordion whose header is a checkbox (its value)."""

import gradio as gr


class InputAccordion(gr.Checkbox):
    def __init__(self, value, **kwargs):
        super().__init__(value, **kwargs)


class ToolButton(gr.Button):
    pass


class FormRow(gr.Row):
    pass
