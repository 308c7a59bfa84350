"""Run outputs: metrics (`trade.report.metrics`), artifacts and the HTML report."""
