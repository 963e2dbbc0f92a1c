"""Analysis: what ``check`` finds, and the data probes the export also runs.

``check`` collects findings from the plan and the probes; ``probes`` prove on the data what
the catalog cannot tell (keys unique, likely references, dangling rows);
``likely_refs`` finds columns that look like references by name; ``generic_probe`` reads
the types and dangling ids of generic references.
"""
