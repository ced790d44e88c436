.PHONY: demo test lint conformance bench
demo:        ; scripts/demo
test:        ; scripts/test
lint:        ; scripts/bootstrap && .venv/bin/ruff check src tests bench scripts && .venv/bin/mypy
conformance: ; scripts/bootstrap && scripts/conformance sqlite && scripts/conformance postgresql
bench:       ; scripts/bootstrap && .venv/bin/python bench/send_and_list.py
