use burn::module::Module;
use qbheat_workbench::backend::Cpu;
use qbheat_workbench::config::RunConfig;
use qbheat_workbench::model::qbheat::QbHeat;
use qbheat_workbench::spec::Preset;
fn main() {
    let mut cfg = RunConfig::default();
    cfg.model.preset = Preset::MfTiny;
    let m = QbHeat::<Cpu>::new(&cfg, 3, &Default::default());
    println!("encoder {}", m.encoder.num_params());
    println!(
        "  stem {} lite_dw {} lite_pw {} head {}",
        m.encoder.stem.num_params(),
        m.encoder.lite_dw.num_params(),
        m.encoder.lite_pw.num_params(),
        m.encoder.head.num_params()
    );
    for b in &m.encoder.blocks {
        println!(
            "  block {} m2f {} former {} dyrelu {} expand {} dw {} project {} f2m {}",
            b.num_params(),
            b.m2f.num_params(),
            b.former.num_params(),
            b.dyrelu.num_params(),
            b.expand.num_params(),
            b.depthwise.num_params(),
            b.project.num_params(),
            b.f2m.num_params()
        );
    }
    println!(
        "projector {} predictor {} decoder {}",
        m.projector.num_params(),
        m.predictor.num_params(),
        m.decoder.num_params()
    );
}
