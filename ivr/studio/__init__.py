"""The Twilio Studio flow importer: a Flow Definition in, a checked flow file of the flow language out.

definition = read_definition(json.loads(text), "FLOW.json")
imported = convert(definition, "main", flows_dir="flows")
imported.text      # the YAML
imported.reports   # what could not be carried over as Studio had it (Report.format())
"""

from ivr.studio.convert import Imported, convert
from ivr.studio.model import Definition, Report, read_definition

__all__ = ["Definition", "Imported", "Report", "convert", "read_definition"]
