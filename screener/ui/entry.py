"""Packaged Streamlit entry point used by ``screener app`` (works without a checkout)."""

from screener.ui import main

main()
