from recpipe.cli import main


def test_generate_writes_the_lake_and_reports_it(tmp_path, capsys):
    assert main(["generate", "--days", "2", "--users", "30", "--items", "60", "--seed", "1", "--lake", str(tmp_path)]) == 0
    assert "wrote 2 days 2026-11-01..2026-11-02" in capsys.readouterr().out
    assert (tmp_path / "raw/events/ds=2026-11-02/_SUCCESS").exists()


def test_bad_input_exits_2_with_the_problem_named(tmp_path, capsys):
    assert main(["generate", "--days", "1", "--start", "2026-13-01", "--lake", str(tmp_path)]) == 2
    assert "recpipe generate: error: ds is not a real calendar day: '2026-13-01'" in capsys.readouterr().err
    assert main(["summary", "--ds", "yesterday"]) == 2
    assert "ds must look like YYYY-MM-DD, received 'yesterday'" in capsys.readouterr().err
