"""Exchange clients. The core never imports a venue; runners and data sync do."""
