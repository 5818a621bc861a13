//! `hop config`: placeholder until the ssh_config writer lands.
