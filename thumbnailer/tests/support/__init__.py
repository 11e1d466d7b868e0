"""What the tests share besides fixtures: processes, an HTTP client, polling and images."""
