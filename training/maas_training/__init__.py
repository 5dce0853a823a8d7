"""The maas model code that train.py, inference.py and export.py run.

A model's `code/` folder carries this package whole beside `inference.py`, so serving imports
it the way training does. Importing the package does nothing: each module is imported by name.
"""
