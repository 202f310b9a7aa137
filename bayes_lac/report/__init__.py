"""Stage 5: the board report (HTML, PDF, Excel) built from analyses and studies."""
