"""`fieldline report ...`: documents for customers, made from the upstream store.

fieldline report season --store sqlite:///fleet.db --customer "Hillside Farms" --season 2026 --out season.html
fieldline report season --store postgresql://fl@db/fieldline --customer "Hillside Farms" --season 2026 \\
    --out season.html --pdf season.pdf [--json]

Errors (unknown customer, no data in that season, a bad store URL, no Chromium for the PDF) name what
was wrong and what was expected, and exit with code 2.
"""

import json

import typer

from upstream.cli import STORE_HELP

app = typer.Typer(help="Reports for customers: the season report for renewals.", no_args_is_help=True)


def _fail(e, code=2):
    typer.echo("fieldline: %s" % e, err=True)
    raise typer.Exit(code)


@app.command()
def season(
    store: str = typer.Option(..., "--store", help=STORE_HELP),
    customer: str = typer.Option(..., "--customer", help="the customer's name, exactly as in the store"),
    year: int = typer.Option(..., "--season", help="the season: a calendar year, e.g. 2026"),
    out: str = typer.Option(..., "--out", help="write the report here (one self-contained HTML file)"),
    pdf: str = typer.Option(None, "--pdf", help="also print it to this PDF (headless Chromium)"),
    as_json: bool = typer.Option(False, "--json", help="print the figures per field as JSON"),
):
    """The season report of one customer: per field NDVI, canopy stress, water use and rain, GDD, completeness."""
    from upstream.errors import UpstreamError
    from upstream.season import write_season_report

    try:
        summary = write_season_report(store, customer, year, out, pdf=pdf)
    except UpstreamError as e:
        _fail(e)
    except OSError as e:
        _fail("cannot write the report: %s" % e)
    if as_json:
        typer.echo(json.dumps(summary))
        return
    typer.echo("season report %d for %s (%s to %s, %d fields): %s%s" % (
        year, customer, summary["first_day"], summary["last_day"], len(summary["fields"]), out,
        " and %s" % pdf if pdf else ""))  # fmt: skip
    for f in summary["fields"]:
        typer.echo("  %s: %s" % (f["field"], f["statement"]))
