"""The app's pages: one module each, with ``render(universe)``.

Not named ``pages``: Streamlit would list a ``pages/`` directory beside the entry script as extra pages.
"""
