"""This project's tests; a regular package, so that another distribution's top-level `tests` cannot shadow it."""
