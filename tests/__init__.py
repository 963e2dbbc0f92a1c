"""The test suite as a package, so shared helpers are imported as ``tests.support.*``.

pytest (rootdir import mode "prepend") puts the project root on ``sys.path`` because of
this file; test modules never import each other.
"""
