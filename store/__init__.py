"""Schema, migrations, connections and the queries other packages share."""
