acme { accept_terms = true }
daemon {
  check       = "every hour"
  jitter      = "-1m"
  concurrency = 0
  retry_min   = "2h"
  retry_max   = "1h"
  shutdown_grace = "soon"
}
