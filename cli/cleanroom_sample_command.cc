// `coffer cleanroom sample aml|hospitals --out DIR`: writes the files the parties of a
// clean-room scenario upload (cleanroom/samples.h): per party its CSV and dataset
// declaration, the analysis documents, and scenario.json. `make demo` and the end-to-end
// tests use it, so that what they upload is exactly what the documented rules produce.
#include <iostream>

#include "cleanroom/samples.h"
#include "cli/commands.h"

namespace coffer::cli {

namespace {

struct SampleOptions {
    std::string data_dir = "../shared/data";
    std::string out_dir;
    bool generated = false;
    uint64_t seed = 1;
    std::string breast_cancer_csv = cleanroom::kBreastCancerCachePath;
    bool fallback = false;
};

int report(const Status& status, const std::string& what, const std::string& out_dir) {
    if (!status.ok()) {
        std::cerr << "coffer cleanroom sample " << what << ": " << status.to_string() << "\n";
        return status.code() == Errc::kNotFound ? 2 : 1;
    }
    std::cout << "wrote the " << what << " scenario to " << out_dir << " (index " << out_dir
              << "/scenario.json)\n";
    return 0;
}

}  // namespace

void add_cleanroom_sample_command(CLI::App& cleanroom_app, int& exit_code) {
    auto opts = std::make_shared<SampleOptions>();
    CLI::App* sample = cleanroom_app.add_subcommand(
        "sample", "write the uploads and analyses of a demo scenario (aml, hospitals)");
    sample->require_subcommand(1);

    CLI::App* aml = sample->add_subcommand(
        "aml", "three banks: AMLSim split by account id mod 3, or a seeded generator");
    aml->add_option("--data", opts->data_dir, "the shared data folder (holds amlsim/)");
    aml->add_option("--out", opts->out_dir, "output folder")->required();
    aml->add_flag("--generated", opts->generated, "use the seeded generator even if AMLSim exists");
    aml->add_option("--seed", opts->seed, "seed of the generator");
    aml->callback([opts, &exit_code] {
        cleanroom::AmlScenarioOptions o;
        o.force_generator = opts->generated;
        o.generator.seed = opts->seed;
        exit_code = report(cleanroom::write_aml_scenario(opts->data_dir, opts->out_dir, o), "aml",
                           opts->out_dir);
    });

    CLI::App* hospitals = sample->add_subcommand(
        "hospitals", "heart-disease study as four hospitals, or breast-cancer as three");
    hospitals->add_option("--data", opts->data_dir,
                          "the shared data folder (holds heart-disease/)");
    hospitals->add_option("--out", opts->out_dir, "output folder")->required();
    hospitals->add_option("--breast-cancer-csv", opts->breast_cancer_csv,
                          "fallback data (scripts/setup.sh extracts it)");
    hospitals->add_flag("--fallback", opts->fallback,
                        "use the breast-cancer data even if heart-disease exists");
    hospitals->callback([opts, &exit_code] {
        cleanroom::HospitalsScenarioOptions o;
        o.breast_cancer_csv = opts->breast_cancer_csv;
        o.force_fallback = opts->fallback;
        exit_code = report(cleanroom::write_hospitals_scenario(opts->data_dir, opts->out_dir, o),
                           "hospitals", opts->out_dir);
    });
}

}  // namespace coffer::cli
