# consume.cmake: installs the build in BUILD_DIR to a prefix in WORK_DIR, builds the program
# in CONSUMER_DIR against it with find_package(dealflow) and with pkg-config, and checks that
# each program runs and prints VERSION. Run by ctest as `cmake -D... -P consume.cmake`.
function(run what)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${what} failed (${rc}):\n${out}")
  endif()
  set(run_output "${out}" PARENT_SCOPE)
endfunction()

function(check_prints program)
  run("${program}" ${program})
  if(NOT run_output STREQUAL "${VERSION}\n")
    message(FATAL_ERROR "${program} printed \"${run_output}\", not \"${VERSION}\"")
  endif()
  message(STATUS "${program}: ${VERSION}")
endfunction()

set(prefix ${WORK_DIR}/prefix)
file(REMOVE_RECURSE ${WORK_DIR})
run("cmake --install" ${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${prefix})
foreach(file include/dealflow.h ${LIBDIR}/pkgconfig/dealflow.pc
    ${LIBDIR}/cmake/dealflow/dealflowConfig.cmake
    ${LIBDIR}/cmake/dealflow/dealflowConfigVersion.cmake)
  if(NOT EXISTS ${prefix}/${file})
    message(FATAL_ERROR "cmake --install put no ${file} in ${prefix}")
  endif()
endforeach()

run("find_package(dealflow): configure" ${CMAKE_COMMAND} -S ${CONSUMER_DIR}
  -B ${WORK_DIR}/cmake -DCMAKE_PREFIX_PATH=${prefix} -DDEALFLOW_VERSION=${VERSION}
  -DCMAKE_C_COMPILER=${C_COMPILER} "-DCMAKE_C_FLAGS=${C_FLAGS}")
run("find_package(dealflow): build" ${CMAKE_COMMAND} --build ${WORK_DIR}/cmake)
check_prints(${WORK_DIR}/cmake/consumer_shared)
check_prints(${WORK_DIR}/cmake/consumer_static)

set(ENV{PKG_CONFIG_PATH} ${prefix}/${LIBDIR}/pkgconfig)
run("pkg-config" ${PKG_CONFIG} --cflags --libs dealflow)
separate_arguments(pkg_flags UNIX_COMMAND "${run_output}")
separate_arguments(c_flags UNIX_COMMAND "${C_FLAGS}")
run("pkg-config: build" ${C_COMPILER} ${c_flags} -o ${WORK_DIR}/consumer_pkg_config
  ${CONSUMER_DIR}/consumer.c ${pkg_flags} -Wl,-rpath,${prefix}/${LIBDIR})
check_prints(${WORK_DIR}/consumer_pkg_config)
