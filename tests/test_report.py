from lrcn_tf.report import write_report

HEADER = "table,row,setting,metric,dataset,value,run_id,preset\n"


def test_report_has_tables_claims_plots_and_the_disclaimer(tmp_path):
    prod = tmp_path / "table5.csv"
    prod.write_text(
        HEADER
        + "table5,lstm_dec_crf_max,test,bleu4,synthetic_tacos,20.0,r1,smoke\n"
        + "table5,lstm_dec_crf_prob,test,bleu4,synthetic_tacos,25.0,r1,smoke\n"
    )
    out = write_report([prod], "results/expected.csv", tmp_path / "REPORT.md")
    text = out.read_text()
    assert "| lstm_dec_crf_prob | test | bleu4 | 25.00 | 28.80 | r1 |" in text
    assert "| synthetic_tacos | t5_prob_beats_max | HOLDS |" in text
    assert "not comparable" in text
    assert (tmp_path / "table5_synthetic_tacos.png").stat().st_size > 1000
