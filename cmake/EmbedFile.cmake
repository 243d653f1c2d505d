# embed_file(TARGET FILE SYMBOL): compiles FILE's bytes into TARGET as
#   extern const char SYMBOL[]; extern const unsigned long SYMBOL_size;
# so data files (the information-element registry) need no run-time path.
function(embed_file TARGET FILE SYMBOL)
  get_filename_component(src ${FILE} ABSOLUTE)
  set(out ${CMAKE_CURRENT_BINARY_DIR}/${SYMBOL}.c)
  add_custom_command(
    OUTPUT ${out}
    COMMAND ${CMAKE_COMMAND} -DIN=${src} -DOUT=${out} -DSYMBOL=${SYMBOL}
            -P ${CMAKE_SOURCE_DIR}/cmake/EmbedFileScript.cmake
    DEPENDS ${src} ${CMAKE_SOURCE_DIR}/cmake/EmbedFileScript.cmake
    VERBATIM)
  target_sources(${TARGET} PRIVATE ${out})
endfunction()
