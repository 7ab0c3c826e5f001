"""Streamlit entry point: ``streamlit run app.py`` (or ``screener app``). The UI lives in `screener.ui`."""

from screener.ui import main

main()
