"""What the chapters show: the analysis kit over records (:mod:`vidattn.report.kit`), learning gates, paired statistics, tables and ledgers, plots, and the re-check of a ledger claim."""
